import pytest
import torch

from mnemo_tutorial import env
from mnemo_tutorial.utils import get_device


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("YES", True), (" yes ", True),
                                           ("", False), ("0", False), ("false", False), ("No", False)])
def test_retrain_flag(monkeypatch, raw, expected):
    monkeypatch.setenv("MNEMO_RETRAIN", raw)
    assert env.retrain_requested() is expected
    assert env.retrain_requested(raw) is expected


def test_chapter_seed(monkeypatch):
    monkeypatch.delenv("MNEMO_SEED", raising=False)
    assert env.chapter_seed() == 0
    for raw, seed in (("", 0), (" 1 ", 1), ("12", 12)):
        monkeypatch.setenv("MNEMO_SEED", raw)
        assert env.chapter_seed() == seed
    for bad in ("-1", "one", "1.5"):
        monkeypatch.setenv("MNEMO_SEED", bad)
        with pytest.raises(ValueError, match=rf"^MNEMO_SEED must be a non-negative integer; got '{bad}'"):
            env.chapter_seed()
    with pytest.raises(ValueError, match="^seed must"):
        env.chapter_seed("x")


def test_retrain_flag_unset_and_bad(monkeypatch):
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    assert env.retrain_requested() is False
    monkeypatch.setenv("MNEMO_RETRAIN", "maybe")
    with pytest.raises(ValueError, match=r"^MNEMO_RETRAIN must be one of .*got 'maybe'$"):
        env.retrain_requested()
    with pytest.raises(ValueError, match=r"^retrain must be"):
        env.retrain_requested("2")


@pytest.mark.parametrize("device_type, capability, name, dtype, scaler", [
    ("cpu", None, "float32", None, False),
    ("cuda", (9, 0), "bfloat16", torch.bfloat16, False),   # H100
    ("cuda", (8, 0), "bfloat16", torch.bfloat16, False),   # A100: the first with native bfloat16
    ("cuda", (7, 5), "float16", torch.float16, True),      # T4 (Colab's free GPU)
    ("cuda", (6, 0), "float16", torch.float16, True),      # P100
])
def test_training_precision_by_capability(device_type, capability, name, dtype, scaler):
    p = env.training_precision(device_type, capability)
    assert (p.name, p.autocast_dtype, p.grad_scaler) == (name, dtype, scaler)


def test_get_device_accepts_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device("auto") == torch.device("cpu") == get_device(None) == get_device(" AUTO ")
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("auto") == torch.device("cuda")


def test_machine_description_names_the_cpu():
    text = env.machine_description("cpu")
    assert text.startswith("cpu (") and text.endswith(")") and len(text) > len("cpu ()")
    assert env.cpu_model() in text
