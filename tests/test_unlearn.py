import copy
import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from mnemo_tutorial import unlearn
from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.codes import MnemonicCodes
from mnemo_tutorial.fisher import stable_cross_entropy
from mnemo_tutorial.metrics import forget_metrics
from mnemo_tutorial.models import MLP
from mnemo_tutorial.unlearn import (
    LAMBDA1_GRID, LAMBDA2_GRID, ForgetFailed, forget, layer_steps, sensitivity,
)


class ReluMLP(MLP):
    """A subclass of the package's MLP with another activation (defect 5)."""

    def features(self, x):
        return torch.relu(self.fc1(x.flatten(1)))


def trained_tiny(seed=0, num_classes=4, dim=12, steps=300, cls=MLP):
    """A small MLP trained on separable Gaussian blobs plus the codes."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g) * 3
    y = torch.randint(0, num_classes, (600,), generator=g)
    x = (centers[y] + torch.randn(600, dim, generator=g)).sigmoid()
    codes = MnemonicCodes.random(num_classes, (dim,), seed=seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = cls(in_features=dim, hidden=64, num_classes=num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        xb, _ = codes.mix_batch(x, y, 0.3, g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), y).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    return model, codes, x, y


@pytest.fixture(scope="module")
def tiny():
    return trained_tiny()


def code_margins(model, codes, classes):
    """(min over forget codes of best remaining logit - own, min over remaining codes of own - best other)."""
    with torch.no_grad():
        z = model(codes.codes)
    n = z.shape[0]
    remain = [c for c in range(n) if c not in classes]
    depth = min(float(z[c, remain].max() - z[c, c]) for c in classes)
    keep = min(float(z[c, c] - torch.cat([z[c, :c], z[c, c + 1:]]).max()) for c in remain)
    return depth, keep


def delta_norm(a, b):
    with torch.no_grad():
        return sum(float((p - q).double().square().sum()) for p, q in zip(a.parameters(), b.parameters())) ** 0.5


def test_sensitivity_and_layer_steps_by_hand():
    f_f = {"a": torch.tensor([4.0, 0.0, 1.0]), "b": torch.tensor([[2.0]])}
    f_r = {"a": torch.tensor([2.0, 0.0, 0.0]), "b": torch.tensor([[0.5]])}
    eta = sensitivity(f_f, f_r, eps=1e-16)
    torch.testing.assert_close(eta["a"], torch.tensor([2.0, 0.0, 1e16]))
    torch.testing.assert_close(eta["b"], torch.tensor([[4.0]]))
    assert torch.equal(f_r["a"], torch.tensor([2.0, 0.0, 0.0]))  # inputs untouched
    steps = layer_steps(eta, lambda1=1e-3, lambda2=10.0)
    assert steps["a"] == pytest.approx(min(1e-3, 10.0 / 1e16))
    assert steps["b"] == pytest.approx(min(1e-3, 10.0 / 4.0))
    nan = sensitivity({"a": torch.tensor([float("nan")])}, {"a": torch.tensor([1.0])})
    assert nan["a"].item() == 0.0


def test_perturbation_equals_formula_on_tiny_model(tiny):
    model, codes, _, _ = tiny
    lam1, lam2 = 1e-2, 0.5
    res = forget(model, codes, [1], lambdas=(lam1, lam2), sign=-1, normalize_fisher=False, on_failure="return")
    # by hand: squared gradients of each code's loss, one backward per code
    sq = {k: [] for k, _ in model.named_parameters()}
    for c in range(codes.num_classes):
        model.zero_grad()
        nn.functional.cross_entropy(model(codes.codes[c : c + 1]), torch.tensor([c])).backward()
        for k, p in model.named_parameters():
            sq[k].append(p.grad.detach().square())
    model.zero_grad(set_to_none=True)
    f_f = {k: v[1] for k, v in sq.items()}
    f_r = {k: torch.stack([v[i] for i in (0, 2, 3)]).mean(0) for k, v in sq.items()}
    new = dict(res.model.named_parameters())
    for k, w in model.named_parameters():
        eta = f_f[k] / (f_r[k] + 1e-16)
        alpha = min(lam1, lam2 / float(eta.max()))
        assert res.report.steps[k] == pytest.approx(alpha, rel=1e-4)
        torch.testing.assert_close(new[k], w - alpha * eta, rtol=1e-4, atol=1e-6)
    assert res.report.sign == -1 and res.report.selection == "fixed"
    assert res.report.details["lambdas"] == "given"


def test_input_model_untouched_modes_restored_no_grads(tiny):
    model, codes, _, _ = tiny
    before = copy.deepcopy(model.state_dict())
    for mode in (True, False):
        model.train(mode)
        res = forget(model, codes, [2], on_failure="return")
        assert model.training is mode and res.model.training is mode
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k])
        assert all(p.grad is None for p in model.parameters())
        assert all(p.grad is None for p in res.model.parameters())
        assert res.model is not model
        assert "forward" not in vars(res.model.fc1)  # the probe's patch is gone
    model.eval()


def test_sign_choice_follows_code_score(tiny):
    model, codes, _, _ = tiny
    res = forget(model, codes, [0], lambdas=(1.0, 50.0), on_failure="return")
    scores = {}
    for s in (1, -1):
        m = forget(model, codes, [0], lambdas=(1.0, 50.0), sign=s, on_failure="return").model
        pred = m(codes.codes).argmax(1)
        scores[s] = float(pred[0] != 0) + float((pred[1:] == torch.arange(1, 4)).float().mean())
    assert scores[res.report.sign] == max(scores.values())


def test_auto_forgets_each_class_of_tiny_model_from_codes_only(tiny):
    model, codes, x, y = tiny
    met = []
    for c in range(4):
        res = forget(model, codes, [c], on_failure="return")
        assert res.report.selection == "data-free"
        diag = res.report.details["diagnosis"]
        met.append(diag["criterion_met"])
        assert (res.report.status == "ok") == diag["criterion_met"] == (diag["forget_code_margin"]["after"] >= 8.0)
        assert diag["forget_code_margin"]["before"] < 0 < diag["remaining_code_margin"]["after"]
        m = forget_metrics(res.model(x).argmax(1), y, [c], 4)
        assert m["E_F"] >= 85.0, (c, m)
        assert m["A_R"] >= 95.0, (c, m)
    assert met == [False, False, True, True]  # the codes of classes 0 and 1 reach about 5 and 7.6 logits


def test_validation_selection_and_several_classes(tiny):
    model, codes, x, y = tiny
    res = forget(model, codes, [0, 3], validation=(x[:200], y[:200]))
    assert res.report.selection == "validation" and res.report.forget == [0, 3]
    assert res.report.details["validation_size"] == 200
    m = forget_metrics(res.model(x[200:]).argmax(1), y[200:], [0, 3], 4)
    assert m["E_F"] >= 95.0 and m["A_R"] >= 90.0


def test_same_seed_gives_bit_identical_weights():
    m1, c1, _, _ = trained_tiny(seed=5)
    m2, c2, _, _ = trained_tiny(seed=5)
    assert torch.equal(c1.codes, c2.codes)
    r1, r2 = forget(m1, c1, [1], on_failure="return"), forget(m2, c2, [1], on_failure="return")
    for (k, a), (_, b) in zip(r1.model.state_dict().items(), r2.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_global_random_state_untouched(tiny):
    model, codes, x, y = tiny
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    forget(model, codes, [2])
    forget(model, codes, [2], validation=(x[:50], y[:50]), on_failure="return")
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


@pytest.mark.parametrize("bad, word", [
    ([], "at least one"), ([4], "0..3"), ([-1], "0..3"), ([1, 1], "twice"),
    ([0, 1, 2, 3], "leave at least one"), (["x"], "class indices"),
])
def test_bad_forget_sets(bad, word):
    model, codes, _, _ = trained_tiny(steps=1)
    with pytest.raises(ValueError, match=f"classes.*{word}|{word}"):
        forget(model, codes, bad)
    with pytest.raises(ValueError, match=word):
        check_forget_classes(bad, 4)


X2 = (torch.rand(5, 12), torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("kwargs, word", [
    (dict(lambdas="best"), "lambdas"), (dict(lambdas=(0, 1)), "lambdas"),
    (dict(sign=2), "sign"), (dict(sign=True), "sign"), (dict(margin=-1.0), "margin"),
    (dict(selection="paper"), "selection"), (dict(selection="validation"), "validation"),
    (dict(lambdas=(1e-3, 1.0), selection="data-free"), "lambdas"),
    (dict(validation=X2, selection="fixed"), "validation"),
    (dict(validation=(torch.rand(0, 12), torch.zeros(0, dtype=torch.long))), "validation"),
    (dict(verify=(torch.rand(3, 12), torch.zeros(2, dtype=torch.long))), "verify"),
    (dict(on_failure="ignore"), "on_failure"), (dict(paper_lambdas=(1e-3,)), "paper_lambdas"),
    (dict(grids=((), (1.0,))), "grids"), (dict(grids=((1.0,), (-1.0,))), "grids"),
    (dict(fisher_dtype=torch.int64), "fisher_dtype"),
    (dict(params=["nope"]), "params"), (dict(params=[]), "params"),
])
def test_bad_options(kwargs, word):
    model, codes, _, _ = trained_tiny(steps=1)
    with pytest.raises(ValueError, match=word):
        forget(model, codes, [0], **kwargs)


@pytest.mark.parametrize("cls", [MLP, ReluMLP])
def test_probe_routes_equal_the_plain_forward(cls):
    model, codes, _, _ = trained_tiny(cls=cls)
    model.eval()
    eta = {k: torch.rand_like(v) for k, v in model.named_parameters()}
    work = copy.deepcopy(model)
    probe = unlearn._Probe(model, work, codes.codes, torch.arange(4), eta, [1], 4)
    rows = torch.tensor([[0.3, -0.2, 0.1, 0.5], [0.0, 0.0, 0.0, 0.0], [-1.0, 1.0, 2.0, -0.5]], dtype=torch.float64)
    generic = probe.logits(rows)
    assert probe.enable_fast(rows[0]) == "fast" and "fc1" in probe.cached
    fast = probe.logits(rows)
    for r, z in zip(rows, fast):
        params = {k: v.detach() + float(r[j]) * eta[k] for j, (k, v) in enumerate(model.named_parameters())}
        plain = torch.func.functional_call(model, params, (codes.codes,))
        torch.testing.assert_close(z, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, generic, rtol=1e-5, atol=1e-5)


def test_relu_subclass_of_mlp_is_probed_as_it_computes():
    """Defect 5: the probe's view of the step equals what the returned model computes."""
    model, codes, _, _ = trained_tiny(cls=ReluMLP, seed=1)
    for c in range(4):
        res = forget(model, codes, [c], on_failure="return")
        diag = res.report.details["diagnosis"]
        depth, keep = code_margins(res.model, codes, [c])
        assert diag["forget_code_margin"]["after"] == pytest.approx(depth, rel=1e-4, abs=1e-4)
        assert diag["remaining_code_margin"]["after"] == pytest.approx(keep, rel=1e-4, abs=1e-4)
        assert (res.report.status == "ok") == (depth >= 8.0 and keep > 0)


def test_structure_the_fast_route_cannot_see_falls_back_to_generic():
    """A Linear whose weight is also used outside its call: the check sends the probe generic."""

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(12, 12), nn.Linear(12, 4)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            return self.b(h + 0.1 * (x @ self.a.weight.T))

    torch.manual_seed(0)
    model = Tied().eval()
    codes = MnemonicCodes.random(4, (12,), seed=0)
    eta = {k: torch.rand_like(v) for k, v in model.named_parameters()}
    probe = unlearn._Probe(model, copy.deepcopy(model), codes.codes, torch.arange(4), eta, [1], 4)
    assert probe.enable_fast(torch.ones(4, dtype=torch.float64)) == "generic"
    res = forget(model, codes, [1], lambdas=(1e-2, 1.0), on_failure="return")
    assert res.report.details["probe"] == "generic"


def test_params_is_the_head_only_fisher_step(tiny):
    """Defect 1: forget(params=HEAD) = the Fisher of the head only, normalised over the head."""
    model, codes, _, _ = tiny
    head = ["fc2.weight", "fc2.bias"]
    lam1, lam2 = 1.0, 5.0
    res = forget(model, codes, [1], params=head, lambdas=(lam1, lam2), sign=-1, on_failure="return")
    params = dict(model.named_parameters())
    sq = {k: [] for k in head}
    for c in range(4):
        loss = stable_cross_entropy(model(codes.codes[c : c + 1]), torch.tensor([c]))
        for k, g in zip(head, torch.autograd.grad(loss, [params[k] for k in head])):
            sq[k].append(g.square())
    sq = {k: torch.stack(v) for k, v in sq.items()}
    total = sum(v.flatten(1).sum(1) for v in sq.values())  # each code's norm over the head only
    norm = {k: v / total.view(-1, *[1] * (v.dim() - 1)) for k, v in sq.items()}
    new = dict(res.model.named_parameters())
    for k in head:
        eta = norm[k][1] / (norm[k][[0, 2, 3]].mean(0) + 1e-16)
        alpha = min(lam1, lam2 / float(eta.max()))
        torch.testing.assert_close(new[k], params[k] - alpha * eta, rtol=1e-4, atol=1e-6)
    assert torch.equal(new["fc1.weight"], params["fc1.weight"]) and torch.equal(new["fc1.bias"], params["fc1.bias"])
    assert list(res.report.steps) == head and res.report.details["params"] == head


def test_unreachable_criterion_raises_with_the_result(tiny):
    model, codes, _, _ = tiny
    with pytest.raises(ForgetFailed, match="criterion was not met") as info:
        forget(model, codes, [1], margin=1e6)
    rep = info.value.result.report
    assert rep.status == "failed" and rep.details["diagnosis"]["criterion_met"] is False
    assert rep.details["diagnosis"]["forget_code_margin"]["after"] < 1e6
    returned = forget(model, codes, [1], margin=1e6, on_failure="return")
    assert returned.report.status == "failed"
    for a, b in zip(returned.model.parameters(), info.value.result.model.parameters()):
        assert torch.equal(a, b)
    with pytest.warns(RuntimeWarning, match="criterion was not met"):
        warned = forget(model, codes, [1], margin=1e6, on_failure="warn")
    assert warned.report.status == "failed"
    json.dumps(rep.to_dict())


def test_fallback_deepest_margin_keeping_remaining_codes(tiny):
    model, codes, _, _ = tiny
    grids = (LAMBDA1_GRID[::3], LAMBDA2_GRID[::3])
    res = forget(model, codes, [2], margin=1e6, grids=grids, on_failure="return")
    assert res.report.details["fallback"] == "deepest"
    depth, keep = code_margins(res.model, codes, [2])
    assert keep > 0
    for l1 in grids[0]:  # no grid point keeping the remaining codes pushes the forget code deeper
        for l2 in grids[1]:
            for s in (1, -1):
                other = forget(model, codes, [2], lambdas=(l1, l2), sign=s, on_failure="return").model
                d, k = code_margins(other, codes, [2])
                if k > 0:
                    assert d <= depth + 1e-4


def test_fallback_to_paper_values_when_every_point_breaks_a_remaining_code(tiny):
    model, codes, _, _ = tiny
    res = forget(model, codes, [2], grids=((1e3,), (1e9,)), paper_lambdas=(2e-3, 3.0), on_failure="return")
    assert code_margins(res.model, codes, [2])[1] <= 0 or res.report.details["fallback"] == "paper"
    assert res.report.details["fallback"] == "paper" and res.report.status == "failed"
    assert (res.report.lambda1, res.report.lambda2) == (2e-3, 3.0)


def test_larger_margin_never_gives_a_smaller_perturbation(tiny):
    model, codes, _, _ = tiny
    for c in (0, 3):
        norms = [delta_norm(forget(model, codes, [c], margin=m, on_failure="return").model, model)
                 for m in (0.0, 2.0, 4.0, 8.0, 16.0, 32.0)]
        assert norms == sorted(norms), (c, norms)
        assert norms[-1] > norms[0]


def test_data_free_sign_follows_the_paper_rule(tiny):
    """The first sign scanned is the one scoring higher on the codes at the paper's lambdas;
    when it meets the criterion, it is the one chosen."""
    model, codes, _, _ = tiny
    for c in range(4):
        scores = {}
        for s in (1, -1):
            m = forget(model, codes, [c], lambdas="paper", sign=s, on_failure="return").model
            pred = m(codes.codes).argmax(1)
            keep = [k for k in range(4) if k != c]
            scores[s] = (float(pred[c] != c) + float((pred[keep] == torch.tensor(keep)).float().mean()),
                         code_margins(m, codes, [c])[0])
        first = max((1, -1), key=lambda s: scores[s])
        own = forget(model, codes, [c], sign=first, on_failure="return")
        auto = forget(model, codes, [c], on_failure="return")
        if own.report.status == "ok":
            assert auto.report.sign == first
            assert (auto.report.lambda1, auto.report.lambda2) == (own.report.lambda1, own.report.lambda2)


def test_selection_is_inferred_and_paper_lambdas_are_used(tiny):
    model, codes, _, _ = tiny
    res = forget(model, codes, [1], lambdas="paper", paper_lambdas=(2e-3, 4.0), on_failure="return")
    assert res.report.selection == "fixed" and res.report.details["lambdas"] == "paper"
    assert (res.report.lambda1, res.report.lambda2) == (2e-3, 4.0)
    again = forget(model, codes, [1], selection="fixed", paper_lambdas=(2e-3, 4.0), sign=res.report.sign, on_failure="return")
    for a, b in zip(res.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)
    assert forget(model, codes, [2], lambdas="auto").report.selection == "data-free"


def test_fixed_selection_that_keeps_the_class_fails(tiny):
    model, codes, _, _ = tiny
    with pytest.raises(ForgetFailed) as info:
        forget(model, codes, [1], lambdas=(1e-6, 1e-1))  # far too small a step
    assert info.value.result.report.details["diagnosis"]["forget_code_margin"]["after"] < 0


def test_verify_on_held_out_samples(tiny, monkeypatch):
    model, codes, x, y = tiny
    res = forget(model, codes, [2], verify=(x[:300], y[:300]))
    ver = res.report.details["diagnosis"]["verification"]
    assert ver["ok"] and ver["samples"] == 300 and ver["forget_samples"] == int((y[:300] == 2).sum())
    pred = res.model(x[:300]).argmax(1)
    assert ver["E_F"] == pytest.approx(100 * float((pred[y[:300] == 2] != 2).float().mean()))
    monkeypatch.setattr(unlearn, "VERIFY_TOLERANCE", -1.0)  # nothing can pass
    with pytest.raises(ForgetFailed, match="held-out check failed") as info:
        forget(model, codes, [2], verify=(x[:300], y[:300]))
    assert info.value.result.report.details["diagnosis"]["criterion_met"] is True


def test_fisher_dtype_float64_gives_the_same_step(tiny):
    model, codes, _, _ = tiny
    a = forget(model, codes, [1], lambdas=(1e-2, 1.0), sign=1, on_failure="return")
    b = forget(model, codes, [1], lambdas=(1e-2, 1.0), sign=1, fisher_dtype=torch.float64, on_failure="return")
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert q.dtype == torch.float32
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_frozen_and_unused_tensors_are_not_reported_as_moved():
    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.fc, self.spare = nn.Linear(12, 16), nn.Linear(16, 4), nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(torch.tanh(self.body(x)))

    torch.manual_seed(0)
    model = WithUnused()
    codes = MnemonicCodes.random(4, (12,), seed=0)
    res = forget(model, codes, [0], lambdas=(1e-2, 1.0), on_failure="return")
    assert set(res.report.steps) == {"body.weight", "body.bias", "fc.weight", "fc.bias"}
    assert torch.equal(res.model.spare.weight, model.spare.weight)


def test_failure_message_names_codes_the_model_never_learned():
    model, codes, _, _ = trained_tiny(steps=1)  # barely trained: its codes are not memorised
    with pytest.raises(ForgetFailed, match="misclassifies a remaining code before the step") as info:
        forget(model, codes, [0])
    assert info.value.result.report.details["diagnosis"]["remaining_code_margin"]["before"] <= 0


def test_failure_message_names_non_finite_weights(tiny):
    model, codes, _, _ = tiny
    broken = copy.deepcopy(model)
    with torch.no_grad():
        next(broken.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(ForgetFailed, match="not finite") as info:
        forget(broken, codes, [0])
    assert "misclassifies" not in str(info.value)


def test_validation_split_without_the_forgotten_class_and_tensors_that_cannot_move(tiny):
    model, codes, x, y = tiny
    keep = y != 1
    res = forget(model, codes, [1], validation=(x[keep][:100], y[keep][:100]), on_failure="return")
    assert res.report.selection == "validation" and res.report.details["validation_score"] <= 1.0
    with torch.no_grad():  # an all-zero sensitivity (a constant model): nothing can move, and that is a failure
        const = copy.deepcopy(model)
        const.fc2.weight.zero_()
    with pytest.raises(ForgetFailed):
        forget(const, codes, [1], params=["fc1.weight", "fc1.bias"])


def test_forget_defaults_are_the_default_forget_settings():
    """profiles.ForgetSettings (torch-free) repeats forget's defaults; they must not drift apart."""
    import inspect

    from mnemo_tutorial.profiles import ForgetSettings

    defaults = {k: p.default for k, p in inspect.signature(forget).parameters.items()}
    assert ForgetSettings().forget_kwargs() == {k: defaults[k] for k in ("paper_lambdas", "params", "margin")}
