"""Audits that tell removal from suppression (evaluation/removal.py) and the full comparison's
statistics (evaluation/compare.py), on cases whose answer is known in advance."""
import copy
import math

import pytest
import torch
from test_audits import blob_data, fit
from torch import nn

from mnemo_tutorial.evaluation import compare
from mnemo_tutorial.evaluation.removal import (
    RELEARN_THRESHOLD,
    depth_probe,
    divergence_to,
    entropy_mia,
    js_divergence,
    layer_features,
    probe_layers,
    relearn_curve,
)
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.models import MLP, make_model


@pytest.fixture(scope="module")
def blob_model():
    data = blob_data()
    torch.manual_seed(0)
    return data, fit(MLP(in_features=16, hidden=32, num_classes=3), data.x_train, data.y_train)


def test_probe_layers_of_the_package_models():
    assert probe_layers(MLP()) == ["fc1", "fc2"]
    res = probe_layers(make_model("small_resnet", num_classes=10))
    assert res[0] == "stem.1" and res[-1] == "fc" and res[1:-1] == [f"layers.{i}" for i in range(len(res) - 2)]
    # conv + batch norm + ReLU + pool, four times: the batch norms end the groups
    assert probe_layers(make_model("face_cnn", num_classes=40)) == [
        "body.1", "body.5", "body.9", "body.13", "fc"]
    with pytest.raises(ValueError, match="layers with parameters"):
        probe_layers(nn.Sequential(nn.ReLU()))


def test_layer_features_are_the_layer_outputs_pooled(blob_model):
    data, model = blob_model
    x = data.x_test[:7]
    feats = layer_features(model, x, ["fc1", "fc2"], batch_size=3)
    torch.testing.assert_close(feats["fc1"], model.fc1(x.flatten(1)).detach())
    torch.testing.assert_close(feats["fc2"], model(x).detach())
    conv = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.Flatten(), nn.LazyLinear(3))
    conv(x)
    f = layer_features(conv, x, ["0"])["0"]
    torch.testing.assert_close(f, conv[0](x).mean((2, 3)).detach())
    assert not conv[0]._forward_hooks  # hooks removed
    with pytest.raises(ValueError, match="layers must name modules"):
        layer_features(model, x, ["fc9"])


def test_depth_probe_finds_a_class_the_features_separate(blob_model):
    data, model = blob_model
    out = depth_probe(model, data, [1], train_samples=200, test_samples=100, seed=0)
    assert out["layers"] == ["fc1", "fc2"] and min(out["recall"]) > 90.0
    # features that carry nothing: constant outputs, the probe cannot find the class
    dead = copy.deepcopy(model)
    with torch.no_grad():
        for p in dead.parameters():
            p.zero_()
    blind = depth_probe(dead, data, [1], train_samples=200, test_samples=100, seed=0)
    assert max(blind["balanced_accuracy"]) == pytest.approx(50.0)


def test_js_divergence_known_values():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.8, 0.2]], dtype=torch.float64)
    js = js_divergence(p, q)
    assert js[0].item() == pytest.approx(math.log(2)) and js[1].item() == 0.0
    m = torch.tensor([0.5, 0.5])
    kl = lambda a: float((a * (a / m).log()).sum())  # noqa: E731
    assert js[2].item() == pytest.approx(0.5 * kl(p[2]) + 0.5 * kl(q[2]))
    torch.testing.assert_close(js, js_divergence(q, p))


def test_divergence_to_self_is_zero_and_to_a_suppressed_model_is_positive(blob_model):
    data, model = blob_model
    assert divergence_to(model, model, data, [0]) == 0.0
    hidden = copy.deepcopy(model)
    with torch.no_grad():
        hidden.fc2.bias[0] -= 20.0
    assert divergence_to(hidden, model, data, [0]) > 0.3  # the class's mass moved elsewhere


class MembershipPixel(nn.Module):
    """Confident (low entropy) exactly on inputs whose last pixel is 1 (the training split
    here), uniform elsewhere: a model that leaks membership through its entropy."""

    def forward(self, x):
        flag = x.flatten(1)[:, -1:]
        return flag * torch.tensor([30.0, 0.0, 0.0])


def test_entropy_mia_finds_members_by_their_entropy():
    g = torch.Generator().manual_seed(0)
    x_tr, x_te = torch.rand(300, 1, 4, 4, generator=g), torch.rand(100, 1, 4, 4, generator=g)
    x_tr.view(300, -1)[:, -1], x_te.view(100, -1)[:, -1] = 1.0, 0.0
    y_tr, y_te = torch.arange(300) % 3, torch.arange(100) % 3
    data = ImageData("pixel", x_tr, y_tr, x_te, y_te, ["0", "1", "2"])
    leaky = MembershipPixel()
    leaky.dummy = nn.Linear(1, 1)  # a parameter, for the device lookup
    assert entropy_mia(leaky, data, [0]) == 1.0  # every forget sample looks like a member
    x_tr.view(300, -1)[y_tr == 0, -1] = 0.0  # the forget class now looks like test data
    assert entropy_mia(leaky, data, [0], retain_samples=150, test_samples=80) == 0.0


def test_entropy_mia_reads_the_same_entropies_from_precomputed_logits(blob_model):
    data, model = blob_model
    from mnemo_tutorial.evaluation.metrics import SplitLogits, split_logits

    logits = split_logits(model, data)
    assert logits.train.shape == (len(data.y_train), 3) and logits.test.shape == (len(data.y_test), 3)
    for kw in ({}, {"retain_samples": 40, "test_samples": 30, "seed": 3}):
        assert entropy_mia(model, data, [1], logits=logits, **kw) == entropy_mia(model, data, [1], **kw)
    with pytest.raises(ValueError, match="logits.train must have one row per train sample"):
        entropy_mia(model, data, [1], logits=SplitLogits(logits.train[:-1], logits.test))


def test_relearn_curve_known_cases(blob_model):
    data, model = blob_model
    state = copy.deepcopy(model.state_dict())
    kept = relearn_curve(model, data, [0], steps=3)
    assert len(kept["forget_acc"]) == 4 and kept["steps_to_threshold"] == 0
    hidden = copy.deepcopy(model)
    with torch.no_grad():
        hidden.fc2.bias[0] -= 20.0
    back = relearn_curve(hidden, data, [0], steps=40, lr=0.05)
    assert back["forget_acc"][0] == 0.0 and back["steps_to_threshold"] is not None
    first = back["steps_to_threshold"]
    assert back["forget_acc"][first] >= RELEARN_THRESHOLD > max(back["forget_acc"][:first])
    stuck = relearn_curve(hidden, data, [0], steps=2, lr=1e-9)
    assert stuck["steps_to_threshold"] is None
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    for bad, match in (({"steps": 0}, "steps"), ({"lr": 0}, "lr"), ({"forget_samples": 0}, "forget_samples")):
        with pytest.raises(ValueError, match=match):
            relearn_curve(model, data, [0], **bad)


# --------------------------------------------------------------------------- the comparison's statistics


def cell(seed, cls, values):
    """A comparison cell whose rows carry only audit values {method: {key: value}}."""
    rows = {n: {"status": "ok", "E_F": 100.0, "A_R": 98.0, "tow": 1.0, "seconds": 1.0,
                "audits": {"probe": {"fc1": v.get("probe_last", 0.0)}, "relearn_curve": [0.0, 1.0], **v}}
            for n, v in values.items()}
    return {"seed": seed, "class": cls, "original": rows.pop("original"), "methods": rows}


def test_interval_known_answer():
    iv = compare.interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert iv == pytest.approx({"mean": 2.0, "low": 2.0 - half, "high": 2.0 + half, "n": 3})
    assert compare.interval([5.0]) == {"mean": 5.0, "low": 5.0, "high": 5.0, "n": 1}


def test_separation_places_methods_by_paired_differences():
    g = torch.Generator().manual_seed(0)
    cells = []
    for i in range(8):
        noise = float(torch.randn(1, generator=g)) * 0.01
        cells.append(cell(0, i, {
            "original": {"mia_entropy": 0.9},
            "retrain": {"mia_entropy": 0.30 + noise, "relearn_steps": 10 + i},
            "suppress": {"mia_entropy": 0.05 + noise, "relearn_steps": 10 + i},
            "like-retrain": {"mia_entropy": 0.30 + 2 * noise, "relearn_steps": 12 + i},
            "like-suppress": {"mia_entropy": 0.05 - noise, "relearn_steps": 11 + i},
        }))
    sep = compare.separation(cells)
    ent = sep["mia_entropy"]
    assert ent["separates"] and ent["retrain_minus_suppress"]["mean"] == pytest.approx(0.25)
    assert ent["methods"]["like-retrain"]["placement"] == "with retrain"
    assert ent["methods"]["like-suppress"]["placement"] == "with suppress"
    assert ent["methods"]["original"]["placement"] == "apart from both"
    assert not sep["relearn_steps"]["separates"] and "methods" not in sep["relearn_steps"]
    summary = compare.summarize_cells(cells)
    assert summary["retrain"]["relearn_steps"]["mean"] == pytest.approx(13.5)
    assert summary["suppress"]["failed"] == 0 and summary["retrain"]["relearn_curve"] == [0.0, 1.0]
    # probe_output: the last probed layer, also for rows written before that key existed
    assert compare.audit_value({"probe": {"fc1": 1.0, "fc2": 7.0}}, "probe_output") == 7.0
    assert compare.audit_value({"probe_output": 3.0, "probe": {"fc2": 7.0}}, "probe_output") == 3.0
    no_control = [cell(0, 0, {"original": {}, "retrain": {}})]
    assert compare.separation(no_control) == {}


def test_compare_rejects_bad_input_before_any_work():
    for kwargs, match in (
        ({"seeds": [0, 0]}, "seeds must not repeat"),
        ({"seeds": [-1]}, "seeds must be non-negative"),
        ({"classes": [10]}, "classes must be class indices"),
        ({"classes": [1, 1]}, "classes must be distinct"),
        ({"workers": 0}, "workers must be a positive integer"),
        ({"methods": "magic"}, "methods must be"),
    ):
        args = {"seeds": [0], "classes": [0], **kwargs}
        with pytest.raises(ValueError, match=match):
            compare.compare("mnist", "quick", args.pop("seeds"), args.pop("classes"), **args)


def _thread_counts(_):
    import threadpoolctl

    return torch.get_num_threads(), sorted({i["num_threads"] for i in threadpoolctl.threadpool_info()})


def test_comparison_workers_run_one_thread_in_every_pool():
    # torch's pool and the BLAS/OpenMP pools of NumPy, SciPy and scikit-learn alike: with
    # several workers on as many cores, any pool left at one thread per core oversubscribes them
    specs = [{"progress": False}, {"progress": False}]
    assert compare._map(_thread_counts, specs, workers=2, threads=1, desc="t") == [(1, [1]), (1, [1])]


@pytest.mark.parametrize(
    ("name", "classes", "one_shot_flag"),
    [
        ("compare-mnist-quick.json", list(range(10)), None),
        ("compare-cifar10-quick.json", [0, 3, 5], "--params all"),
    ],
)
def test_the_committed_comparisons_cover_every_method_control_and_audit(name, classes, one_shot_flag):
    """What chapter 7 reads: every (seed, class) cell of 3 seeds, every registered method and
    both controls in every cell with every audit, provenance, and statistics that the package
    recomputes from the cells as committed."""
    from mnemo_tutorial.methods import METHODS
    from mnemo_tutorial.shipped import load_result

    result = load_result(name)
    for key in ("command", "package_version", "package_source_hash", "machine", "date", "wall_seconds"):
        assert result[key], key
    if one_shot_flag:
        assert one_shot_flag in result["command"]
    assert sorted((c["seed"], c["class"]) for c in result["cells"]) == [
        (s, c) for s in (0, 1, 2) for c in classes
    ]
    audits = {"mia_auc", "mia_entropy", "probe_first", "probe_last", "probe_output", "relearn_steps",
              "relearn_curve", "js_to_reference"}
    for cell in result["cells"]:
        assert set(cell["methods"]) == set(METHODS), (cell["seed"], cell["class"])
        assert {"suppress", "head-only"} <= set(cell["methods"])
        for row in cell["methods"].values():
            if row["status"] != "refused":
                assert audits <= set(row["audits"]), row["method"]
    summary = compare.summarize_cells(result["cells"])
    assert summary.keys() == result["summary"].keys()
    for k, entry in summary.items():
        assert entry["E_F"]["mean"] == pytest.approx(result["summary"][k]["E_F"]["mean"]), k
    assert compare.separation(result["cells"]).keys() == result["separation"].keys()
