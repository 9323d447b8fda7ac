"""``scripts/random_subset.py`` on a small synthetic data set (a tiny MLP, one epoch): the
subset's size and draw, its exclusion from retraining, the one-shot method's refusal or result,
the JSON's provenance, and the argument checks. The real run (MNIST, three seeds) is not part
of the test suite; its committed result is checked for structure."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mnemo_tutorial.core.settings import ForgetSettings
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.profiles import Profile, Settings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "random_subset.py"
COMMITTED = ROOT / "mnemo_tutorial" / "results" / "random-subset-mnist.json"
PROVENANCE = ("command", "package_version", "package_source_hash", "machine", "torch", "date")

_spec = importlib.util.spec_from_file_location("random_subset", SCRIPT)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)


def tagged_blobs(classes=4, n_train=400, n_test=100):
    """Noisy class prototypes on 1 x 8 x 8; pixel (0, 0, 0) of training sample i is i / n_train,
    so a training row names its index."""
    g = torch.Generator().manual_seed(0)
    protos = torch.rand(classes, 1, 8, 8, generator=g)

    def split(n):
        y = torch.arange(n) % classes
        return (protos[y] + 0.05 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1), y

    (xt, yt), (xs, ys) = split(n_train), split(n_test)
    xt[:, 0, 0, 0] = torch.arange(n_train) / n_train
    return ImageData(name="tiny", x_train=xt, y_train=yt, x_test=xs, y_test=ys,
                     classes=[str(c) for c in range(classes)])


TINY = Settings(Profile(name="tiny", dataset="tiny", model="mlp", epochs=1, batch_size=32, optimizer="adamw",
                        lr=3e-3, model_kwargs={"in_features": 64, "hidden": 16}), ForgetSettings())


def test_the_subset_has_round_fraction_n_samples_and_is_reproducible():
    for n, fraction in ((60000, 0.01), (400, 0.01), (333, 0.05), (10, 0.5)):
        subset, keep, non = rs.draw_split(n, n, fraction, seed=3)
        assert subset.numel() == round(fraction * n) == non.numel()
        assert torch.equal(torch.sort(torch.cat([subset, keep])).values, torch.arange(n))
    a, b = rs.draw_split(400, 100, 0.05, 1), rs.draw_split(400, 100, 0.05, 1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], rs.draw_split(400, 100, 0.05, 2)[0])
    with pytest.raises(ValueError, match="--fraction"):
        rs.draw_split(40, 10, 0.01, 0)  # round(0.4) = 0 samples


def test_run_excludes_the_subset_from_retraining_and_records_provenance(tmp_path, monkeypatch):
    from mnemo_tutorial.training import loop

    data, seen = tagged_blobs(), []
    real = loop.train_model

    def spy(model, x, y, *args, **kwargs):
        seen.append(torch.round(x[:, 0, 0, 0] * len(data.y_train)).long())
        return real(model, x, y, *args, **kwargs)

    monkeypatch.setattr(loop, "train_model", spy)
    result = rs.run(data, [0, 5], 0.01, settings=TINY, root=str(tmp_path), progress=False)
    full = [s for s in seen if s.numel() == 400]  # the originals (trained on everything)
    retrained = [s for s in seen if s.numel() != 400]
    assert len(retrained) == 2 and all(torch.equal(s, torch.arange(400)) for s in full)
    for row, trained_on in zip(result["rows"], retrained):
        subset = rs.draw_split(400, 100, 0.01, row["seed"])[0]
        assert row["subset_size"] == 4 == subset.numel() and sum(row["subset_class_counts"]) == 4
        assert trained_on.numel() == 396 == row["models"]["retrain"]["train_samples"]
        assert not set(trained_on.tolist()) & set(subset.tolist())
        assert row["models"]["retrain"]["train_seconds_source"] == "measured in this run"
        for name in ("original", "retrain"):
            m = row["models"][name]
            assert 0 <= m["subset_accuracy"] <= 100 and 0 <= m["mia_auc"] <= 1 and m["train_seconds"] > 0
        assert 0 <= row["comparison"]["js_subset_bits"] <= 1
    for key in PROVENANCE:
        assert isinstance(result[key], str) and result[key], key
    assert result["threads"] >= 1 and result["seeds"] == [0, 5]
    assert result["one_shot_entry_points"]["sample_level_parameters"] == []
    for key in ("mean", "low", "high", "n", "sd"):
        assert key in result["summary"]["original"]["subset_accuracy"]
    assert isinstance(result["reading"]["text"], str) and "Verdict" in result["reading"]["text"]
    out = tmp_path / "r.json"
    rs.write_json(result, out)
    assert json.loads(out.read_text())["package_source_hash"] == result["package_source_hash"]
    assert not list(tmp_path.glob("*.tmp"))


def test_forgetting_every_class_of_the_subset_is_refused_verbatim(tmp_path):
    data = tagged_blobs(classes=2, n_train=200, n_test=100)
    result = rs.run(data, [1], 0.1, settings=TINY, root=str(tmp_path), progress=False)
    record = result["rows"][0]["one_shot"]
    assert record["requested_classes"] == [0, 1] and record["status"] == "refused"
    assert record["error_type"] == "ValueError" and "leave at least one" in record["message"]
    assert "one-shot" not in result["rows"][0]["models"] and "refused" in result["reading"]["text"]


@pytest.mark.parametrize("argv, named", [
    (["--fraction", "0"], "--fraction"), (["--fraction", "0.6"], "--fraction"), (["--fraction", "x"], "--fraction"),
    (["--seeds", "0,-1"], "--seeds"), (["--seeds", "1,1"], "--seeds"), (["--seeds", "a"], "--seeds"),
    (["--report", "r.txt"], "--report"),
])
def test_bad_arguments_stop_before_any_work_with_a_message(argv, named, capsys):
    with pytest.raises(SystemExit) as stop:
        rs.main(argv, data="not loaded: the arguments are checked first")
    assert stop.value.code == 2 and named in capsys.readouterr().err


def test_committed_result_has_the_provenance_and_every_seed():
    if not COMMITTED.exists():
        pytest.skip("no committed result")
    result = json.loads(COMMITTED.read_text())
    for key in PROVENANCE:
        assert isinstance(result[key], str) and result[key], key
    assert result["command"].startswith("MNEMO_") or result["command"].startswith("python")
    assert [r["seed"] for r in result["rows"]] == result["seeds"]
    assert all(r["subset_size"] == round(result["fraction"] * 60000) for r in result["rows"])
    assert result["reading"]["text"] and isinstance(result["reading"]["vacuous"], bool)
