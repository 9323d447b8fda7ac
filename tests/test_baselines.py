"""Unlearning baselines and the benchmark on tiny synthetic problems (a few seconds in all)."""
import argparse
import json

import pytest
import torch

from mnemo_tutorial import bench
from mnemo_tutorial.baselines import BASELINES, get_baseline
from mnemo_tutorial.data import ImageData
from mnemo_tutorial.metrics import evaluate
from mnemo_tutorial.profiles import Profile
from mnemo_tutorial.train import train_or_load

FORGET = [0]


def blobs(n_train=600, n_test=300, classes=3, seed=0, disjoint=False):
    """Gaussian blobs in a 1x4x4 input. With ``disjoint``, class 0 lives on pixels 0-3 and
    the other classes on pixels 4-15 only."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(classes, 16, generator=g)
    support = torch.ones(classes, 16)
    if disjoint:
        support[0, 4:] = 0
        support[1:, :4] = 0

    def draw(n):
        y = torch.arange(n) % classes
        return ((centers[y] + 0.15 * torch.randn(n, 16, generator=g)) * support[y]).view(n, 1, 4, 4), y

    (xtr, ytr), (xte, yte) = draw(n_train), draw(n_test)
    return ImageData("synth", xtr, ytr, xte, yte, [str(c) for c in range(classes)])


PROFILE = Profile(name="quick", dataset="synth", model="mlp", epochs=30, batch_size=32, optimizer="adam",
                  lr=1e-2, momentum=0.0, weight_decay=0.0, schedule="cosine", t_mix=0.1,
                  extra={"model_kwargs": {"in_features": 16, "hidden": 32}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = blobs()
    result = train_or_load(PROFILE, data, seed=0, root=tmp_path_factory.mktemp("ckpt"), progress=False)
    return data, result


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def forget_acc_train(model, data):
    return 100.0 - evaluate(model, data.x_train, data.y_train, FORGET, data.num_classes)["E_F"]


# Settings that make each method act within a few milliseconds on this tiny problem
# (the defaults are sized for MNIST: a few hundred steps over thousands of samples).
TINY_KWARGS = {
    "retrain": {},
    "finetune": {"epochs": 50, "lr": 0.2, "batch_size": 32},
    "neggrad": {"lr": 0.2, "max_epochs": 50, "batch_size": 32},
    "ssd": {},
    "unsir": {"batch_size": 16, "impair_lr": 0.05},
}


@pytest.mark.parametrize("name", list(TINY_KWARGS))
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_baseline_forgets_and_leaves_input_alone(trained, name, mode):
    data, result = trained
    model = result.model
    model.train(mode == "train")
    before = snapshot(model)
    acc0 = forget_acc_train(model, data)
    out = BASELINES[name](model, data, FORGET, profile=PROFILE, seed=0, **TINY_KWARGS[name])
    # the input model is untouched: same weights, same mode, no gradients
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), (name, k)
    assert model.training == (mode == "train")
    assert all(p.grad is None for p in model.parameters())
    # the new model: a different object, in the input's mode, without gradients
    assert out.model is not model
    assert out.model.training == (mode == "train")
    assert all(p.grad is None for p in out.model.parameters())
    rep = out.report
    assert rep.method == name and rep.forget == FORGET and rep.seconds > 0
    json.dumps(rep.to_dict())
    # the metrics move the expected way: the forgotten class's accuracy drops, the rest stays
    m = evaluate(out.model, data.x_test, data.y_test, FORGET, data.num_classes)
    assert acc0 >= 95.0
    drop = {"finetune": 10.0}.get(name, 80.0)
    assert forget_acc_train(out.model, data) <= acc0 - drop, name
    assert m["A_R"] >= 95.0, (name, m["A_R"])
    model.eval()


def test_retrain_never_sees_the_forgotten_class_and_keeps_codes(trained):
    data, result = trained
    out = BASELINES["retrain"](result.model, data, FORGET, profile=PROFILE, seed=0, codes=result.codes)
    assert out.report.details["train_samples"] == int((data.y_train != 0).sum())
    assert out.report.details["t_mix"] == PROFILE.t_mix
    assert evaluate(out.model, data.x_test, data.y_test, FORGET, 3)["E_F"] == 100.0
    no_codes = BASELINES["retrain"](result.model, data, FORGET, profile=PROFILE, seed=0, t_mix=0.0, epochs=3)
    assert no_codes.report.details["t_mix"] == 0.0 and no_codes.report.details["epochs"] == 3


def test_fisher_forgetting_noise_targets_what_the_rest_does_not_use(tmp_path):
    """Class 0 lives on pixels the other classes never use: the retained data's Fisher of the
    weights reading those pixels is 0, so they get the largest noise and class 0 breaks."""
    data = blobs(disjoint=True)
    prof = PROFILE.replace(name="tiny")
    torch.manual_seed(0)
    model = train_or_load(prof, data, seed=0, root=tmp_path, progress=False).model
    before = snapshot(model)
    out = BASELINES["fisher"](model, data, FORGET, profile=prof, seed=0, alpha=1e-6)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    delta = (out.model.fc1.weight - model.fc1.weight).detach().abs()
    # weights reading pixels 0-3 have F_r = 0 exactly: noise std sqrt(alpha * max_inverse) = 10,
    # so E|delta| = 10 * sqrt(2 / pi); the weights the other classes use get less
    expected = 10.0 * (2 / torch.pi) ** 0.5
    assert abs(float(delta[:, :4].mean()) - expected) < 0.15 * expected
    assert delta[:, 4:].mean() < 0.5 * delta[:, :4].mean()
    m = evaluate(out.model, data.x_test, data.y_test, FORGET, 3)
    assert m["E_F"] >= 50.0 and m["A_R"] >= 85.0
    assert out.report.details["retain_samples"] == int((data.y_train != 0).sum())


def test_ssd_dampens_only_selected_parameters(trained):
    data, result = trained
    model = result.model
    out = BASELINES["ssd"](model, data, FORGET, profile=PROFILE, seed=0)
    ratio = torch.cat([(q / p).flatten() for p, q in zip(model.parameters(), out.model.parameters())])
    ratio = ratio[torch.isfinite(ratio)]
    changed = ratio != 1.0
    assert changed.any() and (ratio[changed] <= 0.1 + 1e-6).all()  # beta = I_D / I_f < 1 / alpha
    assert (ratio >= -1e-6).all()
    fish = BASELINES["ssd"](model, data, FORGET, profile=PROFILE, seed=0, importance="fisher", alpha=2.0)
    assert fish.report.details["importance"] == "fisher"
    assert fish.report.details["forget_samples"] == int((data.y_train == 0).sum())


def test_neggrad_stops_when_the_forget_batch_is_all_wrong(trained):
    data, result = trained
    out = BASELINES["neggrad"](result.model, data, FORGET, profile=PROFILE, seed=0, **TINY_KWARGS["neggrad"])
    assert out.report.details["stopped_early"] and out.report.details["last_forget_batch_error"] == 1.0
    plus = BASELINES["neggrad"](result.model, data, FORGET, profile=PROFILE, seed=0, retain_weight=0.5,
                                lr=0.2, max_epochs=50, batch_size=32)
    assert plus.report.details["retain_weight"] == 0.5


@pytest.mark.parametrize("name, kwargs, word", [
    ("ssd", {"importance": "hessian"}, "importance"),
    ("ssd", {"alpha": 0}, "alpha"),
    ("ssd", {"data_samples": 0}, "ssd_data"),
    ("fisher", {"retain_samples": "many"}, "fisher_retain"),
    ("neggrad", {"retain_weight": 1.0}, "retain_weight"),
    ("finetune", {"epochs": 0}, "epochs"),
    ("unsir", {"noise_lr": -1.0}, "noise_lr"),
])
def test_bad_arguments_raise_value_error(trained, name, kwargs, word):
    data, result = trained
    with pytest.raises(ValueError, match=word):
        BASELINES[name](result.model, data, FORGET, profile=PROFILE, **kwargs)


@pytest.mark.parametrize("bad", [[3], [0, 0], [0, 1, 2], []])
def test_bad_forget_sets(trained, bad):
    data, result = trained
    with pytest.raises(ValueError, match="forget"):
        BASELINES["ssd"](result.model, data, bad, profile=PROFILE)


def test_registry():
    assert set(BASELINES) == {"retrain", "finetune", "neggrad", "ssd", "fisher", "unsir"}
    assert get_baseline("ssd") is BASELINES["ssd"]
    with pytest.raises(ValueError, match="method must be one of"):
        get_baseline("magic")
    for fn in BASELINES.values():
        assert "20" in fn.__doc__  # every docstring cites its paper (with its year)


# --------------------------------------------------------------------------- bench


def test_benchmark_table_and_speedups(trained):
    data, result = trained
    kept = {}
    out = bench.benchmark(result, data, FORGET, PROFILE, seed=0, methods="mnemonic,ssd,neggrad", repeats=3,
                          repeat_below=60.0, audits=True, progress=False,
                          on_result=lambda name, res: kept.setdefault(name, res))
    rows = out["methods"]
    assert list(rows) == ["mnemonic", "ssd", "neggrad"] and set(kept) == set(rows)
    for name, r in rows.items():
        assert r["repeats"] == 3 and len(r["seconds_all"]) == 3
        assert r["seconds"] == sorted(r["seconds_all"])[1]
        assert r["speedup"] == pytest.approx(r["seconds"] / rows["mnemonic"]["seconds"])
        assert {"mia_auc", "probe_forget_acc", "relearn_steps"} <= set(r["audits"])
    assert rows["mnemonic"]["speedup"] == pytest.approx(1.0)
    table = bench.format_table(out)
    assert "mnemonic" in table and "original" in table and "MIA AUC" in table
    json.dumps(out)


def test_parse_methods():
    assert bench.parse_methods("all") == list(bench.METHODS)
    assert bench.parse_methods("ssd, mnemonic") == ["ssd", "mnemonic"]
    assert "mnemonic" in bench.METHODS and "retrain" in bench.METHODS
    for bad in ("magic", "ssd,ssd", ""):
        with pytest.raises(ValueError, match="methods"):
            bench.parse_methods(bad)


def test_fim_benchmark_agrees_with_loop(trained):
    data, result = trained
    fim = bench.fim_benchmark(result.model, data.x_train[:50], data.y_train[:50], chunk=16)
    assert fim["samples"] == 50 and fim["speedup"] > 0 and fim["max_rel_diff"] < 1e-4
    assert all(p.grad is None for p in result.model.parameters())


def test_bench_main_writes_report(trained, tmp_path, monkeypatch):
    data, result = trained
    monkeypatch.setattr(bench, "load_dataset", lambda name: data)
    monkeypatch.setattr(bench, "get_profile", lambda name, profile=None: PROFILE)
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path))
    report = tmp_path / "out" / "bench.json"
    args = argparse.Namespace(dataset="synth", profile="quick", seed=0, epochs=None, report=str(report),
                              device=None, no_progress=True, forget=[0])
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--methods", "mnemonic,neggrad", "--repeats", "2", "--fim-samples", "20"], namespace=args)
    assert bench.main(args) == 0
    rep = json.loads(report.read_text())
    for key in ("dataset", "profile", "device", "seed", "forget", "train_seconds", "methods", "fim_speedup", "original"):
        assert key in rep
    assert rep["forget"] == [0] and rep["methods"]["mnemonic"]["speedup"] == 1.0
    assert rep["fim_speedup"] > 0
    assert not list(report.parent.glob("*.tmp"))
    args.methods = "nope"
    with pytest.raises(ValueError, match="methods"):
        bench.main(args)


def test_retrain_starts_from_the_seeded_initial_weights(trained):
    from mnemo_tutorial.baselines import _fresh_copy
    from mnemo_tutorial.models import MLP, make_model
    from mnemo_tutorial.utils import seed_everything

    data, result = trained
    seed_everything(0)
    init = make_model("mlp", num_classes=3, in_features=16, hidden=32)
    fresh = _fresh_copy(result.model, PROFILE, 3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(init.state_dict().values(), fresh.state_dict().values()))
    other = MLP(in_features=16, hidden=8, num_classes=3)  # not what the profile builds
    reset = _fresh_copy(other, PROFILE, 3, seed=0)
    assert reset.fc1.weight.shape == (8, 16) and not torch.equal(reset.fc1.weight, other.fc1.weight)
