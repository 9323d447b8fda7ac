"""Unlearning baselines on tiny synthetic problems (a few seconds in all)."""
import json
import random

import numpy as np
import pytest
import torch

from mnemo_tutorial.evaluation.metrics import evaluate
from mnemo_tutorial.methods.common import QUICK_BUDGETS, make_report
from mnemo_tutorial.methods.finetune import finetune
from mnemo_tutorial.methods.fisher_forgetting import (
    _reference_variance,
    fisher_forgetting,
    fisher_noise,
    true_fisher,
)
from mnemo_tutorial.methods.neggrad import neggrad
from mnemo_tutorial.methods.retrain import _initial_model, retrain, retrain_key
from mnemo_tutorial.methods.ssd import ssd, ssd_indices
from mnemo_tutorial.methods.unsir import _unsir_noise, unsir
from mnemo_tutorial.training import checkpoints
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.models import MLP
from mnemo_tutorial.training.profiles import Profile

FORGET = [0]


def blobs(n_train=600, n_test=300, classes=3, seed=0, disjoint=False):
    """Gaussian blobs in a 1x4x4 input, classes interleaved (sample i has class i % classes).
    With ``disjoint``, class 0 lives on pixels 0-3 and the other classes on pixels 4-15 only."""
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


PROFILE = Profile(name="tiny", dataset="synth", model="mlp", epochs=30, batch_size=32, optimizer="adam",
                  lr=1e-2, momentum=0.0, weight_decay=0.0, schedule="cosine", t_mix=0.0,
                  model_kwargs={"in_features": 16, "hidden": 32})


def fit(data, seed=0, epochs=30):
    """A small MLP trained by plain Adam (no package training code involved)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MLP(in_features=16, hidden=32, num_classes=data.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(epochs):
            for idx in torch.randperm(len(data.y_train)).split(32):
                loss = torch.nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    for p in model.parameters():
        p.grad = None
    return model.eval()


@pytest.fixture(scope="module")
def trained():
    data = blobs()
    return data, fit(data)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def train_forget_acc(model, data):
    return 100.0 - evaluate(model, data.x_train, data.y_train, FORGET, data.num_classes)["E_F"]


# Settings that make each method act on this tiny problem (the defaults are sized for MNIST).
TINY = {
    "retrain": (retrain, {"use_cache": False}),  # train every time (the cache is tested below)
    "finetune": (finetune, {"epochs": 50, "lr": 0.2, "batch_size": 32, "weight_decay": 5e-3}),
    "neggrad": (neggrad, {"lr": 0.2, "max_epochs": 50, "batch_size": 32}),
    "ssd": (ssd, {"order": "shuffled", "alpha": 5.0}),
    "fisher": (fisher_forgetting, {}),
    "fisher-noise": (fisher_noise, {"alpha": 1e-6}),
    "unsir": (unsir, {"batch_size": 16, "impair_lr": 0.05}),
}


def call(name, model, data, seed=0, **extra):
    fn, kwargs = TINY[name]
    if name == "retrain":
        return fn(model, data, FORGET, PROFILE, seed, **{**kwargs, **extra})
    return fn(model, data, FORGET, seed, **{**kwargs, **extra})


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_baseline_forgets_and_leaves_input_alone(trained, name, mode):
    data, model = trained
    model.train(mode == "train")
    before = snapshot(model)
    acc0 = train_forget_acc(model, data)
    out = call(name, model, data)
    model_after = snapshot(model)
    model.eval()
    assert all(torch.equal(v, before[k]) for k, v in model_after.items()), name
    assert all(p.grad is None for p in model.parameters())
    assert out.model is not model
    assert out.model.training == (mode == "train")
    assert all(p.grad is None for p in out.model.parameters())
    rep = out.report
    assert rep.method == name and rep.details["budget"] == "quick"
    assert getattr(rep, "status", "ok") == "ok"
    json.dumps(rep.to_dict())
    m = evaluate(out.model, data.x_test, data.y_test, FORGET, data.num_classes)
    assert acc0 >= 95.0
    if name not in ("fisher", "fisher-noise"):  # noise needs a class on its own weights (see below)
        assert train_forget_acc(out.model, data) <= acc0 - 80.0, name
    assert m["A_R"] >= 90.0, (name, m["A_R"])


@pytest.mark.parametrize("name", list(TINY))
def test_baselines_leave_the_global_random_state_alone(trained, name):
    """Defect 4: a baseline must not reseed Python's, NumPy's or torch's global generator."""
    data, model = trained
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    first = call(name, model, data, seed=0)
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    again = call(name, model, data, seed=0)
    assert same_weights(first.model, again.model), "the same seed must give the same model"
    other = call(name, model, data, seed=1)
    assert not same_weights(first.model, other.model), "another seed must give another model"


def test_retrain_never_sees_the_forgotten_class_and_starts_from_the_original_init(trained):
    data, model = trained
    out = retrain(model, data, FORGET, PROFILE, 0, epochs=3)
    assert out.report.details["train_samples"] == int((data.y_train != 0).sum())
    assert evaluate(out.model, data.x_test, data.y_test, FORGET, 3)["E_F"] == 100.0
    init = checkpoints.initial_model(PROFILE, 3, seed=0)
    assert same_weights(_initial_model(model, PROFILE, 3, seed=0), init)
    torch.manual_seed(5)
    other = MLP(in_features=16, hidden=8, num_classes=3)  # not what the profile builds
    reset = _initial_model(other, PROFILE, 3, seed=0)
    assert reset.fc1.weight.shape == (8, 16) and not torch.equal(reset.fc1.weight, other.fc1.weight)


def test_retrain_caches_its_model_and_trains_again_when_asked(trained, tmp_path, monkeypatch):
    data, model = trained
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    first = retrain(model, data, FORGET, PROFILE, 0, epochs=3, root=tmp_path)
    assert first.report.details["source"] == "trained"
    assert len(list((tmp_path / "checkpoints").glob("*-retrain-*.pt"))) == 1
    again = retrain(model, data, FORGET, PROFILE, 0, epochs=3, root=tmp_path)
    assert again.report.details["source"] == "cache" and same_weights(first.model, again.model)
    assert again.report.details["train_seconds"] == first.report.details["train_seconds"]
    other = retrain(model, data, [1], PROFILE, 0, epochs=3, root=tmp_path)
    assert other.report.details["source"] == "trained", "another forgotten class is another model"
    assert other.report.details["key"] != first.report.details["key"]
    forced = retrain(model, data, FORGET, PROFILE, 0, epochs=3, root=tmp_path, fresh=True)
    assert forced.report.details["source"] == "trained"
    monkeypatch.setenv("MNEMO_RETRAIN", "1")
    assert retrain(model, data, FORGET, PROFILE, 0, epochs=3, root=tmp_path).report.details["source"] == "trained"


def test_retrain_key_depends_on_settings_classes_and_codes(trained):
    data, _ = trained
    codes = checkpoints.initial_codes(PROFILE, data, 0)
    key = retrain_key(PROFILE, 0, data, [0], codes)
    assert key == retrain_key(PROFILE, 0, data, [0], checkpoints.initial_codes(PROFILE, data, 0))
    assert key != retrain_key(PROFILE.replace(epochs=3), 0, data, [0], codes)
    assert key != retrain_key(PROFILE, 0, data, [0, 1], codes)
    assert key != retrain_key(PROFILE, 0, data, [0], checkpoints.initial_codes(PROFILE, data, 1))
    assert key != retrain_key(PROFILE, 1, data, [0], codes)


# --------------------------------------------------------------------------- SSD


def test_ssd_reference_loader_is_class_sorted_and_unshuffled(trained):
    """The authors' full-data loader: retained classes one after another, then the forget
    class, in dataset order; nearly every batch holds one class. Ours mixes the classes."""
    data, _ = trained
    gen = torch.Generator().manual_seed(0)
    f_idx, d_idx = ssd_indices(data, FORGET, "sorted", gen)
    assert torch.equal(f_idx, torch.nonzero(data.y_train == 0).flatten())
    labels = data.y_train[d_idx]
    assert torch.equal(labels, torch.cat([torch.full((200,), c) for c in (1, 2, 0)]))
    single = [len(set(b.tolist())) == 1 for b in labels.split(64)]
    assert sum(single) >= len(single) - 2  # only the batches at a class boundary mix
    _, d_shuf = ssd_indices(data, FORGET, "shuffled", gen)
    assert sorted(d_shuf.tolist()) == list(range(600))
    assert all(len(set(b.tolist())) == 3 for b in data.y_train[d_shuf].split(64))


def test_ssd_dampens_only_selected_parameters_and_the_order_matters(trained):
    data, model = trained
    out = ssd(model, data, FORGET, order="shuffled", alpha=5.0)
    ratio = torch.cat([(q / p).flatten() for p, q in zip(model.parameters(), out.model.parameters())])
    ratio = ratio[torch.isfinite(ratio)]
    changed = ratio != 1.0
    assert changed.any() and (ratio[changed] <= 0.2 + 1e-6).all()  # beta = I_D / I_f < 1 / alpha
    assert (ratio >= -1e-6).all()
    # with the authors' class-sorted loader, I_f / I_D stays below about N / N_f = 3 < alpha
    ref = ssd(model, data, FORGET, alpha=5.0)
    assert ref.report.details["dampened_params"] == 0 < out.report.details["dampened_params"]
    assert train_forget_acc(ref.model, data) > train_forget_acc(out.model, data) + 50.0


# --------------------------------------------------------------------------- Fisher forgetting


def test_true_fisher_is_the_expectation_under_the_model(trained):
    """Known answer: sum_k p(k|x) (d CE(x, k) / dw)^2, one backward pass per sample and label."""
    data, model = trained
    x = data.x_train[:7]
    got = true_fisher(model, x, 3, batch_size=3)
    want = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for i in range(7):
        logits = model(x[i : i + 1])
        prob = torch.softmax(logits, 1)[0].detach()
        for k in range(3):
            grads = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, torch.tensor([k])),
                                        list(model.parameters()), retain_graph=True)
            for (name, _), g in zip(model.named_parameters(), grads):
                want[name] += prob[k] * g.square() / 7
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-9)


def test_reference_variance_clamps_averages_per_unit_and_scales_the_head():
    head = ("fc2.weight", "fc2.bias")
    fisher = torch.tensor([[1e-9, 1.0], [1.0, 1.0]])  # 1/F: 1e9 -> clamped, 1
    hidden = _reference_variance("fc1.weight", fisher, head, alpha=1.0)
    torch.testing.assert_close(hidden, torch.tensor([[500.5, 500.5], [1.0, 1.0]]), rtol=1e-4, atol=0)
    out = _reference_variance("fc2.weight", fisher, head, alpha=1.0)
    torch.testing.assert_close(out, torch.tensor([[505.0, 505.0], [10.0, 10.0]]), rtol=1e-4, atol=0)
    bias = _reference_variance("fc1.bias", torch.tensor([1e-9, 0.5]), head, alpha=2.0)
    torch.testing.assert_close(bias, torch.tensor([2e4, 40.0]), rtol=1e-4, atol=0)


def test_fisher_forgetting_resets_the_forgotten_output_row(trained):
    data, model = trained
    out = fisher_forgetting(model, data, FORGET)
    w, b = out.model.fc2.weight.detach(), out.model.fc2.bias.detach()
    assert w[0].abs().max() < 0.15 and abs(float(b[0])) < 0.15  # 0 + noise of std sqrt(1e-3)
    assert model.fc2.weight[0].abs().max() > 0.5  # the original row was not small
    keep = fisher_forgetting(model, data, FORGET, reset_output=False)
    assert keep.model.fc2.weight[0].abs().max() > 0.5
    x0 = data.x_train[data.y_train == 0]
    logit0 = lambda m: float(m(x0)[:, 0].mean().detach())
    assert logit0(model) > 2.0 and logit0(keep.model) > 2.0  # noise alone leaves the class's logit
    assert abs(logit0(out.model)) < 0.5  # the reset sets it to (about) 0


def test_fisher_noise_targets_what_the_rest_does_not_use():
    """Class 0 lives on pixels the other classes never use: the retained data's Fisher of the
    weights reading those pixels is 0, so they get the largest noise and class 0 breaks."""
    data = blobs(disjoint=True)
    model = fit(data)
    out = fisher_noise(model, data, FORGET, alpha=1e-6)
    delta = (out.model.fc1.weight - model.fc1.weight).detach().abs()
    # F_r = 0 exactly: noise std sqrt(alpha * max_inverse) = 10, so E|delta| = 10 * sqrt(2 / pi)
    expected = 10.0 * (2 / torch.pi) ** 0.5
    assert abs(float(delta[:, :4].mean()) - expected) < 0.15 * expected
    assert delta[:, 4:].mean() < 0.5 * delta[:, :4].mean()


def test_quick_budget_subsamples_and_full_uses_everything(trained, monkeypatch):
    data, model = trained
    monkeypatch.setitem(QUICK_BUDGETS, "fisher_retain", 50)
    quick = fisher_noise(model, data, FORGET, budget="quick")
    full = fisher_noise(model, data, FORGET, budget="full")
    assert quick.report.details["retain_samples"] == 50
    assert full.report.details["retain_samples"] == int((data.y_train != 0).sum())
    assert not same_weights(quick.model, full.model)


# --------------------------------------------------------------------------- fine-tune, NegGrad, UNSIR


def test_finetune_full_budget_is_the_references_schedule(trained):
    data, model = trained
    full = finetune(model, data, FORGET, budget="full", epochs=1)
    n_keep = int((data.y_train != 0).sum())
    assert full.report.details["steps"] == -(-n_keep // 64)  # all retained data, batch 64
    quick = finetune(model, data, FORGET, budget="quick", epochs=1)
    assert quick.report.details["steps"] == -(-n_keep // 128)
    # weight decay 5e-4 (reference) vs none (ours): same batches otherwise, different weights
    no_wd = finetune(model, data, FORGET, budget="full", epochs=1, weight_decay=0.0)
    assert not same_weights(full.model, no_wd.model)


def test_neggrad_stops_when_a_forget_batch_is_all_wrong_and_the_retain_term_protects(trained):
    data, model = trained
    kw = {"lr": 0.2, "max_epochs": 50, "batch_size": 32}
    pure = neggrad(model, data, FORGET, **kw)
    assert pure.report.details["stopped_early"] and pure.report.details["last_forget_batch_error"] == 1.0
    assert "ours" in pure.report.details["stop_rule"]
    never = neggrad(model, data, FORGET, stop_error=1.0, **{**kw, "max_epochs": 1, "lr": 1e-4})
    assert not never.report.details["stopped_early"]
    plus = neggrad(model, data, FORGET, retain_weight=0.9, **{**kw, "max_epochs": 10})
    keep = data.y_train != 0
    loss = lambda m: float(torch.nn.functional.cross_entropy(m(data.x_train[keep]), data.y_train[keep]).detach())
    # NegGrad+ forgets too, and its retain term keeps the other classes' loss far lower
    assert train_forget_acc(plus.model, data) <= 10.0 and train_forget_acc(pure.model, data) <= 10.0
    assert loss(plus.model) < 0.5 * loss(pure.model)


def test_unsir_reference_noise_is_normal_and_its_penalty_sums_over_pixels(trained):
    data, model = trained
    s = {"noise_samples": 32, "noise_steps": 0, "noise_lr": 0.1, "noise_reg": 0.1, "noise_init": "normal",
         "penalty": "sum"}
    gen = torch.Generator().manual_seed(0)
    noise, y = _unsir_noise(model, [0], data.input_shape, s, gen, torch.device("cpu"), False)
    assert noise.min() < 0 and y.tolist() == [0] * 32
    uniform, _ = _unsir_noise(model, [0], data.input_shape, {**s, "noise_init": "uniform"}, gen,
                                        torch.device("cpu"), False)
    assert uniform.min() >= 0 and uniform.max() < 1
    norms = {}
    for penalty in ("sum", "mean"):
        n, _ = _unsir_noise(model, [0], data.input_shape, {**s, "noise_steps": 40, "penalty": penalty},
                                      torch.Generator().manual_seed(0), torch.device("cpu"), False)
        norms[penalty] = float(n.square().flatten(1).sum(1).mean())
    assert norms["sum"] < norms["mean"]  # the per-sample sum penalises 16x more on 16 pixels
    assert all(p.requires_grad for p in model.parameters())


def test_unsir_keeps_frozen_parameters_frozen(trained):
    data, model = trained
    model.fc1.weight.requires_grad_(False)
    try:
        out = unsir(model, data, FORGET, batch_size=16)
    finally:
        model.fc1.weight.requires_grad_(True)
    assert not out.model.fc1.weight.requires_grad and out.model.fc2.weight.requires_grad


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("fn, kwargs, word", [
    (ssd, {"importance": "hessian"}, "importance"),
    (ssd, {"order": "random"}, "order"),
    (ssd, {"alpha": 0}, "alpha"),
    (ssd, {"importance": "fisher", "data_samples": 0}, "ssd_data"),
    (fisher_forgetting, {"retain_samples": "many"}, "fisher_retain"),
    (fisher_forgetting, {"budget": "medium"}, "budget"),
    (neggrad, {"retain_weight": 1.0}, "retain_weight"),
    (finetune, {"epochs": 0}, "epochs"),
    (unsir, {"noise_lr": -1.0}, "noise_lr"),
    (unsir, {"noise_init": "laplace"}, "noise_init"),
])
def test_bad_arguments_raise_value_error(trained, fn, kwargs, word):
    data, model = trained
    with pytest.raises(ValueError, match=word):
        fn(model, data, FORGET, **kwargs)


@pytest.mark.parametrize("bad", [[3], [0, 0], [0, 1, 2], []])
def test_bad_forget_sets(trained, bad):
    data, model = trained
    with pytest.raises(ValueError, match="forget"):
        ssd(model, data, bad)


def make_report_for(method, seconds=0.01, status="ok"):
    """A baseline-style report (used by the registry and benchmark tests)."""
    return make_report(method, FORGET, seconds, {}, status)


# --------------------------------------------------------------------------- shipped retrained models


@pytest.mark.parametrize("entry", [e for e in checkpoints.shipped_models() if "retrained_without" in e],
                         ids=lambda e: e["file"])
def test_a_shipped_retrained_model_is_found_by_retrain_and_matches_its_record(entry, monkeypatch):
    import os
    from pathlib import Path

    from mnemo_tutorial.training.data import load_dataset
    from mnemo_tutorial.training.profiles import get_profile

    mirror = os.environ.get("MNEMO_MIRROR")
    if not mirror or not Path(mirror).exists():
        pytest.skip("no data mirror (MNEMO_MIRROR)")
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    data = load_dataset(entry["dataset"])
    profile = get_profile(entry["dataset"], entry["profile"])
    original = checkpoints.train_or_load(profile, data, seed=entry["seed"], device="cpu", use_cache=False, progress=False)
    assert original.source == "pretrained"
    out = retrain(original.model, data, entry["retrained_without"], profile, entry["seed"],
                            codes=original.codes, t_mix=entry["t_mix"], epochs=entry["epochs"], use_cache=False)
    assert out.report.details["source"] == "pretrained" and out.report.details["key"] == entry["key"]
    got = evaluate(out.model, data.x_test, data.y_test, entry["retrained_without"], data.num_classes)
    assert abs(got["E_F"] - entry["E_F"]) <= 0.5, (got["E_F"], entry["E_F"])
    # the same weights on another CPU may flip one near-tie prediction, no more
    assert abs(got["accuracy"] - entry["test_accuracy"]) <= 100.0 / entry["n_test"] + 1e-9
