"""The machinery of scripts/robustness.py on a small synthetic dataset (the real runs train on
MNIST / CIFAR-10 and are not part of the test suite)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.models import MODELS

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("robustness", ROOT / "scripts" / "robustness.py")
robustness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(robustness)


def blobs(classes=3, shape=(1, 8, 8), n_train=240, n_test=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(classes, *shape, generator=g)
    def split(n):
        y = torch.arange(n) % classes
        return (protos[y] + 0.05 * torch.randn(n, *shape, generator=g)).clamp(0, 1), y
    (xt, yt), (xs, ys) = split(n_train), split(n_test)
    return ImageData(name="mnist", x_train=xt, y_train=yt, x_test=xs, y_test=ys, classes=[str(c) for c in range(classes)])


@pytest.mark.parametrize("arch", robustness.ARCHS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 64, 64)])
def test_architectures_build_and_all_but_the_package_mlp_are_outside_the_zoo(arch, shape):
    assert (arch in MODELS) == (arch == "mlp")
    torch.manual_seed(0)
    model = robustness.build(arch, shape, 10).eval()
    assert model(torch.rand(2, *shape)).shape == (2, 10)
    kinds = {type(m).__name__ for m in model.modules()}
    expected = {"mlp": "MLP", "bn_cnn": "BatchNorm2d", "plain_cnn": "Conv2d", "ln_mlp": "LayerNorm",
                "mixer": "LayerNorm", "res_gn_cnn": "GroupNorm", "drop_cnn": "Dropout", "vit": "Attention"}[arch]
    assert expected in kinds
    if arch == "drop_cnn":
        assert "SiLU" in kinds and not kinds & {"BatchNorm2d", "GroupNorm", "LayerNorm"}
    if arch == "plain_cnn":
        assert not kinds & {"BatchNorm2d", "GroupNorm", "LayerNorm"}


ARGV = ["--datasets", "mnist", "--archs", "ln_mlp,bn_cnn", "--seeds", "0", "--epochs", "2",
        "--train-samples", "240", "--test-samples", "90"]


def test_suite_records_every_model_and_class_and_reuses_the_cache(tmp_path):
    argv = ARGV + ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r.json")]
    lines = []
    first = robustness.main(argv, data={"mnist": blobs()}, log=lines.append)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert not list(tmp_path.glob("*.part")) and saved["package_source_hash"] and saved["machine"]["cpu"]
    assert saved["out_of_scope"]["cifar10"]["gpu_command"].startswith("python scripts/robustness.py")
    models = saved["datasets"]["mnist"]["models"]
    assert list(models) == ["ln_mlp", "bn_cnn"] and saved["datasets"]["mnist"]["train_samples"] == 240
    for arch, seeds in models.items():
        e = seeds["0"]
        assert e["source"] == "trained" and len(e["alignment"]["cosine"]) == 3
        assert e["rehearsal"]["params"] in ("head", "all", "head-bias") and e["rehearsal"]["samples"] == 240
        assert 0 <= e["code_accuracy"] <= 100 and len(e["per_class_test_accuracy"]) == 3
        assert [c["class"] for c in e["cells"]] == [0, 1, 2]
        for c in e["cells"]:
            d = c["defaults"]
            assert d["status"] in ("ok", "failed", "refused")
            if d["status"] != "refused":
                assert d["met"] == (d["E_F"] >= 99.0 and d["A_R_drop"] <= 2.0)
            assert d["silent"] == (d["status"] == "ok" and not d["met"])
            for params in ("head", "all", "head-bias"):
                assert c[params]["met"] == (c[params]["E_F"] >= 99.0 and c[params]["A_R_drop"] <= 2.0)
        s = e["summary"]
        assert [p for p in ("head", "all", "head-bias") if p in s] == ["head", "all", "head-bias"]
        assert s["met"] + s["refused"] + s["failed"] + s["silent"] == 3
        assert s["silent_classes"] == [c["class"] for c in e["cells"] if c["defaults"]["silent"]]
    assert len(lines) == 3 and lines[0].startswith("mnist  ln_mlp")
    again = robustness.main(argv, data={"mnist": blobs()}, log=lambda _: None)
    for arch, seeds in first["datasets"]["mnist"]["models"].items():
        repeat = again["datasets"]["mnist"]["models"][arch]["0"]
        assert repeat["source"] == "cache"
        assert [c["head"]["E_F"] for c in repeat["cells"]] == [c["head"]["E_F"] for c in seeds["0"]["cells"]]
        assert repeat["rehearsal"] == seeds["0"]["rehearsal"]


def test_summary_counts_each_outcome_once():
    def cell(c, status, met, reason=None, head=(True, True), every=(False, True)):
        d = {"status": status, "silent": status == "ok" and not met}
        if status != "refused":
            d["met"] = met
        else:
            d["reason"] = reason
        return {"class": c, "defaults": d,
                "head": {"status": "ok", "met": head[0], "rehearsal_met": head[1]},
                "all": {"status": "failed", "met": every[0], "rehearsal_met": every[1]}}
    cells = [cell(0, "ok", True), cell(1, "ok", False), cell(2, "refused", False, "misaligned"),
             cell(3, "refused", False, "rehearsal"), cell(4, "failed", True)]
    s = robustness.summarise(cells)
    assert (s["met"], s["silent"], s["refused"], s["refused_misaligned"], s["failed"]) == (1, 1, 2, 1, 1)
    assert s["silent_classes"] == [1]
    assert s["head"] == {"met": 5, "silent": 0, "rehearsal_agrees": 5, "rehearsal_met_test_missed": 0}
    assert s["all"] == {"met": 0, "silent": 0, "rehearsal_agrees": 0, "rehearsal_met_test_missed": 5}


def test_split_is_a_random_subset_of_class_sorted_data():
    data = blobs(n_train=300, n_test=90)
    order = torch.argsort(data.y_train, stable=True)  # sorted by class, as the CIFAR-10 files are
    data.x_train, data.y_train = data.x_train[order], data.y_train[order]
    part, _ = robustness.split(data, 30, 30, seed=1)
    assert sorted(set(part.y_train.tolist())) == [0, 1, 2] and sorted(set(part.y_test.tolist())) == [0, 1, 2]
    whole, rest = robustness.split(data, None, None, seed=1)
    assert len(whole.y_train) == 300 and len(whole.y_test) == 90 and len(rest) == 0


@pytest.mark.parametrize("argv, word", [
    (["--archs", "resnet"], "--archs"), (["--archs", ","], "--archs"), (["--epochs", "0"], "--epochs"),
    (["--datasets", "svhn"], "--datasets"), (["--seeds", "a"], "--seeds"), (["--seeds", ","], "--seeds"),
])
def test_bad_arguments_exit_2(argv, word, capsys):
    with pytest.raises(SystemExit) as err:
        robustness.parse_args(argv)
    assert err.value.code == 2 and word in capsys.readouterr().err
