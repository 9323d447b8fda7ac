import copy
import json
import random
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.core import forget as forget_module
from mnemo_tutorial.core import probe as probe_module
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.fisher import stable_cross_entropy
from mnemo_tutorial.core.forget import ForgetFailed, forget
from mnemo_tutorial.core.probe import CodeProbe, CodeStats
from mnemo_tutorial.core.selection import candidates
from mnemo_tutorial.core.settings import (
    DEFAULT_MARGIN,
    LAMBDA1_GRID,
    LAMBDA2_GRID,
    PAPER_LAMBDAS,
    DataFree,
    Fixed,
    ForgetSettings,
    Validation,
)
from mnemo_tutorial.core.step import (
    class_fisher_ratio,
    head_params,
    layer_steps,
    maxima,
    sensitivity,
)
from mnemo_tutorial.evaluation.metrics import forget_metrics
from mnemo_tutorial.training.models import MLP


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


def fixed(lambda1=None, lambda2=None, **kwargs):
    return ForgetSettings(selection=Fixed(lambda1, lambda2), **kwargs)


def data_free(margin, **kwargs):
    return ForgetSettings(selection=DataFree(margin=margin), **kwargs)


def code_margins(model, codes, classes):
    """(min over forget codes of best remaining logit - own,
    min over remaining codes of own - best other)."""
    with torch.no_grad():
        z = model(codes.codes)
    n = z.shape[0]
    remain = [c for c in range(n) if c not in classes]
    depth = min(float(z[c, remain].max() - z[c, c]) for c in classes)
    keep = min(float(z[c, c] - torch.cat([z[c, :c], z[c, c + 1:]]).max()) for c in remain)
    return depth, keep


def delta_norm(a, b):
    with torch.no_grad():
        sq = sum(float((p - q).double().square().sum())
                 for p, q in zip(a.parameters(), b.parameters()))
    return sq**0.5


def assert_same_weights(a, b):
    for (k, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), k


def no_instance_forward(model):
    return all("forward" not in vars(m) for m in model.modules())


def head_only_reference(model, codes, forgotten, head, lam1, lam2, sign):
    """The step by hand from the Fisher of the ``head`` tensors only, each code's squared
    gradient normalised over the head: {name: expected new tensor}."""
    params = dict(model.named_parameters())
    sq = {k: [] for k in head}
    for c in range(codes.num_classes):
        loss = stable_cross_entropy(model(codes.codes[c : c + 1]), torch.tensor([c]))
        for k, g in zip(head, torch.autograd.grad(loss, [params[k] for k in head])):
            sq[k].append(g.square())
    sq = {k: torch.stack(v) for k, v in sq.items()}
    total = sum(v.flatten(1).sum(1) for v in sq.values())  # each code's norm over the head only
    norm = {k: v / total.view(-1, *[1] * (v.dim() - 1)) for k, v in sq.items()}
    remain = [c for c in range(codes.num_classes) if c != forgotten]
    out = {}
    for k in head:
        eta = norm[k][forgotten] / (norm[k][remain].mean(0) + 1e-16)
        alpha = min(lam1, lam2 / float(eta.max()))
        out[k] = (params[k] + sign * alpha * eta).detach()
    return out


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


def test_remembered_maxima_follow_in_place_changes_and_new_tensors():
    """maxima() remembers a tensor's maximum (a forget asks for it several times) only until
    the tensor changes in place; a new tensor, even at a freed one's address, is measured."""
    t = torch.tensor([1.0, 3.0])
    assert maxima({"a": t}) == {"a": 3.0}
    t.mul_(2)
    assert maxima({"a": t}) == {"a": 6.0}
    t[0] = 10.0
    assert maxima({"a": t}) == {"a": 10.0}
    for top in range(50):  # freed tensors' ids are reused
        assert maxima({"a": torch.tensor([float(top), -1.0])}) == {"a": float(top)}
    with torch.inference_mode():
        u = torch.tensor([2.0, 5.0])
        assert maxima({"a": u, "e": torch.zeros(0)}) == {"a": 5.0, "e": 0.0}
        u.mul_(2)
        assert maxima({"a": u}) == {"a": 10.0}


def test_perturbation_equals_formula_on_tiny_model(tiny):
    model, codes, _, _ = tiny
    lam1, lam2 = 1e-2, 0.5
    settings = fixed(lam1, lam2, sign=-1, normalize_fisher=False)
    res = forget(model, codes, [1], settings, on_failure="return")
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
    assert res.report.details["settings"]["selection"]["lambdas_source"] == "given"
    assert res.report.details["settings"]["selection"]["lambdas"] == [lam1, lam2]


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
        assert no_instance_forward(res.model) and no_instance_forward(model)
    model.eval()


def test_sign_choice_follows_code_score(tiny):
    model, codes, _, _ = tiny
    res = forget(model, codes, [0], fixed(1.0, 50.0), on_failure="return")
    scores = {}
    for s in (1, -1):
        m = forget(model, codes, [0], fixed(1.0, 50.0, sign=s), on_failure="return").model
        pred = m(codes.codes).argmax(1)
        scores[s] = float(pred[0] != 0) + float((pred[1:] == torch.arange(1, 4)).float().mean())
    assert scores[res.report.sign] == max(scores.values())


def test_data_free_forgets_each_class_of_tiny_model_from_codes_only(tiny):
    model, codes, x, y = tiny
    met = []
    for c in range(4):
        res = forget(model, codes, [c], on_failure="return")
        rep = res.report
        assert rep.selection == "data-free"
        diag = rep.details["diagnosis"]
        met.append(diag["criterion_met"])
        depth, keep = code_margins(res.model, codes, [c])  # what the returned model does
        assert diag["forget_code_margin"]["after"] == pytest.approx(depth, rel=1e-4, abs=1e-4)
        assert (rep.status == "ok") == diag["criterion_met"] == (depth >= DEFAULT_MARGIN)
        assert diag["forget_code_margin"]["before"] < 0 < keep
        if not diag["criterion_met"]:  # every candidate of both signs was scanned in vain
            eta = class_fisher_ratio(model, codes.codes, [c])
            grid = candidates(eta, (LAMBDA1_GRID, LAMBDA2_GRID))
            assert rep.details["fallback"] == "deepest"
            assert rep.details["candidates_evaluated"] == 2 + 2 * len(grid.lambdas)
        m = forget_metrics(res.model(x).argmax(1), y, [c], 4)
        assert m["E_F"] >= 85.0, (c, m)
        assert m["A_R"] >= 95.0, (c, m)
    assert any(met)


def test_validation_selection_and_several_classes(tiny):
    model, codes, x, y = tiny
    res = forget(model, codes, [0, 3], ForgetSettings(selection=Validation(x[:200], y[:200])))
    assert res.report.selection == "validation" and res.report.forget == [0, 3]
    assert res.report.details["validation_size"] == 200
    assert res.report.details["settings"]["selection"] == {"name": "validation", "samples": 200}
    m = forget_metrics(res.model(x[200:]).argmax(1), y[200:], [0, 3], 4)
    assert m["E_F"] >= 95.0 and m["A_R"] >= 90.0


def test_same_seed_gives_bit_identical_weights():
    m1, c1, _, _ = trained_tiny(seed=5)
    m2, c2, _, _ = trained_tiny(seed=5)
    assert torch.equal(c1.codes, c2.codes)
    r1, r2 = forget(m1, c1, [1], on_failure="return"), forget(m2, c2, [1], on_failure="return")
    for (k, a), (_, b) in zip(r1.model.state_dict().items(), r2.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_default_settings_equal_forget_settings_bit_for_bit(tiny):
    model, codes, _, _ = tiny
    for c in (0, 2):
        a = forget(model, codes, [c], on_failure="return")
        b = forget(model, codes, [c], ForgetSettings(), on_failure="return")
        assert_same_weights(a.model, b.model)
        ra, rb = a.report.to_dict(), b.report.to_dict()
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb
        # codes without a rehearsal: "auto" moves every tensor, and the report says so
        assert ra["details"]["settings"] == ForgetSettings(params="all").describe()
        assert ra["details"]["params_from"] == "default"


def test_global_random_state_untouched(tiny):
    model, codes, x, y = tiny
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    forget(model, codes, [2])
    forget(model, codes, [2], ForgetSettings(selection=Validation(x[:50], y[:50])),
           on_failure="return")
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


X_EMPTY = (torch.rand(0, 12), torch.zeros(0, dtype=torch.long))
X_MISMATCHED = (torch.rand(3, 12), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("make, word", [
    (lambda: Fixed("best", 10.0), r"Fixed\(lambda1, lambda2\)"),
    (lambda: Fixed(0, 1), r"Fixed\(lambda1, lambda2\) must be positive"),
    (lambda: Fixed(1e-3), "both lambda1 and lambda2"),
    (lambda: Fixed(lambda2=10.0), "both lambda1 and lambda2"),
    (lambda: ForgetSettings(sign=2), "sign"), (lambda: ForgetSettings(sign=True), "sign"),
    (lambda: DataFree(margin=-1.0), "margin"), (lambda: DataFree(margin="big"), "margin"),
    (lambda: ForgetSettings(selection="paper"), "selection"),
    (lambda: ForgetSettings(selection="data-free"), "selection"),
    (lambda: ForgetSettings(selection=Validation), "selection"),
    (lambda: ForgetSettings(selection=None), "selection"),
    (lambda: Validation(*X_EMPTY), r"Validation\(x, y\).*0 inputs, 0 labels"),
    (lambda: Validation(*X_MISMATCHED), r"Validation\(x, y\).*3 inputs, 2 labels"),
    (lambda: ForgetSettings(paper_lambdas=(1e-3,)), "paper_lambdas"),
    (lambda: ForgetSettings(paper_lambdas=(1e-3, -1.0)), "paper_lambdas"),
    (lambda: ForgetSettings(grids=((), (1.0,))), "grids"),
    (lambda: ForgetSettings(grids=((1.0,), (-1.0,))), "grids"),
    (lambda: ForgetSettings(fisher_dtype=torch.int64), "fisher_dtype"),
    (lambda: ForgetSettings(fisher_dtype=torch.float64), "fisher_dtype"),
    (lambda: ForgetSettings(fisher_dtype="float16"), "fisher_dtype"),
    (lambda: ForgetSettings(normalize_fisher="yes"), "normalize_fisher"),
    (lambda: ForgetSettings(params=[]), "params"),
    (lambda: ForgetSettings(params="heads"), "params.*'heads'"),
    (lambda: ForgetSettings(params=[1, 2]), "params"),
    (lambda: ForgetSettings().replace(sign=0), "sign"),
])
def test_bad_settings(make, word):
    with pytest.raises(ValueError, match=word):
        make()


@pytest.mark.parametrize("args, kwargs, word", [
    ((), {"verify": X_MISMATCHED}, "verify.*3 inputs, 2 labels"),
    ((), {"verify": X_EMPTY}, "verify"),
    ((), {"verify": torch.rand(3, 12)}, "verify"),
    ((), {"on_failure": "ignore"}, "on_failure"),
    (({"params": "all"},), {}, "settings must be a ForgetSettings; got dict"),
    ((DataFree(),), {}, "settings must be a ForgetSettings; got DataFree"),
    ((ForgetSettings(params=["nope"]),), {}, "params.*nope"),
    ((ForgetSettings(params=["fc2.weight", "fc3.bias"]),), {}, "params.*fc3.bias"),
])
def test_bad_forget_arguments(args, kwargs, word):
    model, codes, _, _ = trained_tiny(steps=1)
    with pytest.raises(ValueError, match=word):
        forget(model, codes, [0], *args, **kwargs)


@pytest.mark.parametrize("cls", [MLP, ReluMLP])
def test_probe_routes_equal_the_plain_forward(cls):
    model, codes, _, _ = trained_tiny(cls=cls)
    model.eval()
    eta = {k: torch.rand_like(v) for k, v in model.named_parameters()}
    probe = CodeProbe(model, codes.codes, torch.arange(4), eta, [1], 4)
    assert probe.work is not model
    rows = torch.tensor([[0.3, -0.2, 0.1, 0.5], [0.0, 0.0, 0.0, 0.0], [-1.0, 1.0, 2.0, -0.5]],
                        dtype=torch.float64)
    generic = probe.logits(rows)
    assert probe.enable_fast(rows[0]) == "fast" and "fc1" in probe.cached
    fast = probe.logits(rows)
    for r, z in zip(rows, fast):
        params = {k: v.detach() + float(r[j]) * eta[k]
                  for j, (k, v) in enumerate(model.named_parameters())}
        plain = torch.func.functional_call(model, params, (codes.codes,))
        torch.testing.assert_close(z, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, generic, rtol=1e-5, atol=1e-5)
    stats = list(probe.scan(rows))
    assert stats == probe.code_stats(fast) and all(isinstance(s, CodeStats) for s in stats)
    assert stats[1].remain_ok and stats[1].forget_depth < 0  # unmoved: code 1 still class 1


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
    probe = CodeProbe(model, codes.codes, torch.arange(4), eta, [1], 4)
    assert probe.enable_fast(torch.ones(4, dtype=torch.float64)) == "generic"
    res = forget(model, codes, [1], fixed(1e-2, 1.0), on_failure="return")
    assert res.report.details["probe"] == "generic"


def test_params_is_the_head_only_fisher_step(tiny):
    """Defect 1: params=HEAD = the Fisher of the head only, normalised over the head."""
    model, codes, _, _ = tiny
    head = ["fc2.weight", "fc2.bias"]
    lam1, lam2 = 1.0, 5.0
    settings = fixed(lam1, lam2, params=head, sign=-1)
    res = forget(model, codes, [1], settings, on_failure="return")
    expected = head_only_reference(model, codes, 1, head, lam1, lam2, -1)
    new = dict(res.model.named_parameters())
    for k in head:
        torch.testing.assert_close(new[k], expected[k], rtol=1e-4, atol=1e-6)
    assert torch.equal(new["fc1.weight"], model.fc1.weight)
    assert torch.equal(new["fc1.bias"], model.fc1.bias)
    assert list(res.report.steps) == head and res.report.details["settings"]["params"] == head


def test_params_head_equals_head_params_and_the_head_only_fisher_step(tiny):
    model, codes, _, _ = tiny
    head = list(head_params(model))
    assert head == ["fc2.weight", "fc2.bias"]
    by_word = forget(model, codes, [2], fixed(1.0, 5.0, params="head", sign=1),
                     on_failure="return")
    by_name = forget(model, codes, [2], fixed(1.0, 5.0, params=head, sign=1),
                     on_failure="return")
    assert_same_weights(by_word.model, by_name.model)
    assert by_word.report.steps == by_name.report.steps and list(by_word.report.steps) == head
    assert by_word.report.details["settings"]["params"] == "head"
    expected = head_only_reference(model, codes, 2, head, 1.0, 5.0, 1)
    new = dict(by_word.model.named_parameters())
    for k in head:
        torch.testing.assert_close(new[k], expected[k], rtol=1e-4, atol=1e-6)
    assert torch.equal(new["fc1.weight"], model.fc1.weight)
    default = forget(model, codes, [2], ForgetSettings(params="head"), on_failure="return")
    named = forget(model, codes, [2], ForgetSettings(params=head), on_failure="return")
    assert_same_weights(default.model, named.model)
    assert list(default.report.steps) == head


def test_unreachable_criterion_raises_with_the_result(tiny):
    model, codes, _, _ = tiny
    with pytest.raises(ForgetFailed, match="criterion was not met") as info:
        forget(model, codes, [1], data_free(1e6))
    rep = info.value.result.report
    assert rep.status == "failed" and rep.details["diagnosis"]["criterion_met"] is False
    assert rep.details["diagnosis"]["forget_code_margin"]["after"] < 1e6
    assert rep.details["margin"] == 1e6 == rep.details["settings"]["selection"]["margin"]
    returned = forget(model, codes, [1], data_free(1e6), on_failure="return")
    assert returned.report.status == "failed"
    assert_same_weights(returned.model, info.value.result.model)
    with pytest.warns(RuntimeWarning, match="criterion was not met"):
        warned = forget(model, codes, [1], data_free(1e6), on_failure="warn")
    assert warned.report.status == "failed"
    json.dumps(rep.to_dict())


def test_fallback_deepest_margin_keeping_remaining_codes(tiny):
    model, codes, _, _ = tiny
    grids = (LAMBDA1_GRID[::3], LAMBDA2_GRID[::3])
    res = forget(model, codes, [2], data_free(1e6, grids=grids), on_failure="return")
    assert res.report.details["fallback"] == "deepest"
    depth, keep = code_margins(res.model, codes, [2])
    assert keep > 0
    for l1 in grids[0]:  # no grid point keeping the remaining codes pushes the forget code deeper
        for l2 in grids[1]:
            for s in (1, -1):
                other = forget(model, codes, [2], fixed(l1, l2, sign=s), on_failure="return")
                d, k = code_margins(other.model, codes, [2])
                if k > 0:
                    assert d <= depth + 1e-4


def test_fallback_to_paper_values_when_every_point_breaks_a_remaining_code(tiny):
    model, codes, _, _ = tiny
    grid, paper = ((1e3,), (1e9,)), (2e-3, 3.0)
    for s in (1, -1):  # the grid's only point loses a remaining code with either sign
        only = forget(model, codes, [2], fixed(*grid[0], *grid[1], sign=s), on_failure="return")
        assert code_margins(only.model, codes, [2])[1] <= 0
    res = forget(model, codes, [2], ForgetSettings(grids=grid, paper_lambdas=paper),
                 on_failure="return")
    assert res.report.details["fallback"] == "paper" and res.report.status == "failed"
    assert (res.report.lambda1, res.report.lambda2) == paper
    at_paper = forget(model, codes, [2], fixed(*paper, sign=res.report.sign), on_failure="return")
    assert_same_weights(res.model, at_paper.model)


def test_larger_margin_never_gives_a_smaller_perturbation(tiny):
    model, codes, _, _ = tiny
    for c in (0, 3):
        norms = [delta_norm(forget(model, codes, [c], data_free(m), on_failure="return").model,
                            model)
                 for m in (0.0, 2.0, 4.0, 8.0, 16.0, 32.0)]
        assert norms == sorted(norms), (c, norms)
        assert norms[-1] > norms[0]


def test_data_free_sign_follows_the_paper_rule(tiny):
    """The first sign scanned is the one scoring higher on the codes at the paper's lambdas;
    when it meets the criterion (it does at a margin of 4 for every class), it is chosen."""
    model, codes, _, _ = tiny
    for c in range(4):
        keep = [k for k in range(4) if k != c]
        scores = {}
        for s in (1, -1):
            m = forget(model, codes, [c], fixed(sign=s), on_failure="return").model
            pred = m(codes.codes).argmax(1)
            scores[s] = (float(pred[c] != c)
                         + float((pred[keep] == torch.tensor(keep)).float().mean()),
                         code_margins(m, codes, [c])[0])
        first = max((1, -1), key=lambda s: scores[s])
        own = forget(model, codes, [c], data_free(4.0, sign=first), on_failure="return")
        auto = forget(model, codes, [c], data_free(4.0), on_failure="return")
        assert own.report.status == "ok", c
        assert auto.report.sign == first
        assert (auto.report.lambda1, auto.report.lambda2) == (own.report.lambda1,
                                                              own.report.lambda2)
        assert_same_weights(auto.model, own.model)


def test_fixed_without_lambdas_uses_the_paper_lambdas(tiny):
    model, codes, _, _ = tiny
    settings = ForgetSettings(selection=Fixed(), paper_lambdas=(2e-3, 4.0))
    res = forget(model, codes, [1], settings, on_failure="return")
    sel = res.report.details["settings"]["selection"]
    assert res.report.selection == "fixed" and sel["lambdas_source"] == "paper"
    assert sel["lambdas"] == [2e-3, 4.0]
    assert (res.report.lambda1, res.report.lambda2) == (2e-3, 4.0)
    again = forget(model, codes, [1], fixed(2e-3, 4.0, sign=res.report.sign), on_failure="return")
    assert again.report.details["settings"]["selection"]["lambdas_source"] == "given"
    assert_same_weights(res.model, again.model)
    assert Fixed().lambdas(PAPER_LAMBDAS) == PAPER_LAMBDAS
    assert ForgetSettings().selection == DataFree(margin=DEFAULT_MARGIN)
    assert forget(model, codes, [2]).report.selection == "data-free"


def test_fixed_selection_that_keeps_the_class_fails(tiny):
    model, codes, _, _ = tiny
    with pytest.raises(ForgetFailed) as info:
        forget(model, codes, [1], fixed(1e-6, 1e-1))  # far too small a step
    assert info.value.result.report.details["diagnosis"]["forget_code_margin"]["after"] < 0


def test_verify_on_held_out_samples(tiny, monkeypatch):
    model, codes, x, y = tiny
    res = forget(model, codes, [2], verify=(x[:300], y[:300]))
    ver = res.report.details["diagnosis"]["verification"]
    assert ver["ok"] and ver["samples"] == 300
    assert ver["forget_samples"] == int((y[:300] == 2).sum())
    pred = res.model(x[:300]).argmax(1)
    assert ver["E_F"] == pytest.approx(100 * float((pred[y[:300] == 2] != 2).float().mean()))
    monkeypatch.setattr(forget_module, "VERIFY_TOLERANCE", -1.0)  # nothing can pass
    with pytest.raises(ForgetFailed, match="held-out check failed") as info:
        forget(model, codes, [2], verify=(x[:300], y[:300]))
    assert info.value.result.report.details["diagnosis"]["criterion_met"] is True


def test_fisher_dtype_float64_gives_the_same_step(tiny):
    model, codes, _, _ = tiny
    a = forget(model, codes, [1], fixed(1e-2, 1.0, sign=1), on_failure="return")
    b = forget(model, codes, [1], fixed(1e-2, 1.0, sign=1, fisher_dtype="float64"),
               on_failure="return")
    assert b.report.details["settings"]["fisher_dtype"] == "float64"
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert q.dtype == torch.float32
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_forgotten_model_is_a_fresh_model_in_the_inputs_form(tiny):
    """The returned model is the probe's scratch copy where the dtypes agree (float32 step on a
    float32 model) and a fresh copy where they do not (float64 step): either way it shares no
    storage with the input, keeps its dtypes, mode and requires_grad, and has no hooks or
    patched forwards left from the probe."""
    model, codes, _, _ = tiny
    was_training = model.training
    model.fc1.weight.requires_grad_(False)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        for dtype in ("float32", "float64"):
            res = forget(model, codes, [1], fixed(1e-2, 1.0, sign=1, fisher_dtype=dtype),
                         on_failure="return")
            new = res.model
            assert new is not model and new.training and model.training
            own = {p.data_ptr() for p in model.parameters()}
            for p, q in zip(new.parameters(), model.parameters()):
                assert p.data_ptr() not in own and p.dtype == q.dtype == torch.float32
                assert p.requires_grad == q.requires_grad and p.grad is None
            assert not new.fc1.weight.requires_grad
            assert not torch.equal(new.fc2.weight, model.fc2.weight)
            for mod in new.modules():
                assert not mod._forward_hooks and "forward" not in vars(mod)
            for k, v in model.state_dict().items():
                assert torch.equal(v, before[k])
    finally:
        model.fc1.weight.requires_grad_(True)
        model.train(was_training)


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
    res = forget(model, codes, [0], fixed(1e-2, 1.0), on_failure="return")
    assert set(res.report.steps) == {"body.weight", "body.bias", "fc.weight", "fc.bias"}
    assert torch.equal(res.model.spare.weight, model.spare.weight)


def test_failure_message_names_codes_the_model_never_learned():
    model, codes, _, _ = trained_tiny(steps=1)  # barely trained: its codes are not memorised
    with pytest.raises(ForgetFailed,
                       match="misclassifies a remaining code before the step") as info:
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
    settings = ForgetSettings(selection=Validation(x[keep][:100], y[keep][:100]))
    res = forget(model, codes, [1], settings, on_failure="return")
    assert res.report.selection == "validation" and res.report.details["validation_score"] <= 1.0
    with torch.no_grad():  # an all-zero sensitivity (a constant model): nothing can move, a failure
        const = copy.deepcopy(model)
        const.fc2.weight.zero_()
    with pytest.raises(ForgetFailed):
        forget(const, codes, [1], ForgetSettings(params=["fc1.weight", "fc1.bias"]))


def dead_unit_model():
    """Hidden unit 0 fires on code 0 only: f_R = 0 for its weights, eta ~ 1e14..1e15."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        m[0].weight.copy_(torch.randn(6, 4).abs())
        m[0].bias.zero_()
        m[0].weight[0] = torch.tensor([1.0, -5.0, -5.0, -5.0])
        m[2].weight.copy_(torch.randn(3, 6))
        m[2].weight[:, 0] = torch.tensor([4.0, -1.0, -1.0])
    return m.eval(), torch.eye(4)[:3]


def test_float16_model_with_a_dead_unit_gets_the_float32_step():
    m32, codes = dead_unit_model()
    m16 = copy.deepcopy(m32).half()
    eta = class_fisher_ratio(m32, codes, [0])
    assert float(eta["0.weight"].max()) > torch.finfo(torch.float16).max  # overflows float16
    settings = ForgetSettings(selection=DataFree(margin=1.0))
    r32 = forget(m32, codes, [0], settings, on_failure="return")
    r16 = forget(m16, codes.half(), [0], settings, on_failure="return")
    assert r32.report.status == "ok"
    assert r16.report.sign == r32.report.sign
    assert all(v > 0 for v in r16.report.steps.values()) and set(r16.report.steps) == set(eta)
    for k, v in r16.report.steps.items():
        assert v == pytest.approx(r32.report.steps[k], rel=1e-2), k
    for (k, a), b, w in zip(r32.model.named_parameters(), r16.model.parameters(),
                            m16.parameters()):
        assert b.dtype == torch.float16 and bool(torch.isfinite(b).all()), k
        scale = float(a.detach().abs().max())
        torch.testing.assert_close(b, a.half(), rtol=1e-2, atol=1e-2 * scale)
    moved = (r16.model[0].weight[0] - m16[0].weight[0]).detach()
    assert float(moved.abs().max()) > 0.1  # the dead unit's weights did move
    assert code_margins(r16.model.float(), MnemonicCodes(codes), [0])[0] > 0


def test_probe_never_patches_the_input_or_returned_model(tiny, monkeypatch):
    model, codes, _, _ = tiny
    seen = []
    fast, patched = CodeProbe._fast, CodeProbe._patched

    def record_fast(self, rows):
        seen.append(self.work)
        return fast(self, rows)

    @contextmanager
    def record_patched(self):
        with patched(self):
            name = next(iter(self.cached))
            assert "forward" in vars(self.work.get_submodule(name))
            assert no_instance_forward(model)  # the patch sits on the scratch copy only
            yield

    monkeypatch.setattr(CodeProbe, "_fast", record_fast)
    monkeypatch.setattr(CodeProbe, "_patched", record_patched)
    res = forget(model, codes, [3], on_failure="return")
    assert res.report.details["probe"] == "fast" and seen
    assert all(w is not model for w in seen)
    # the scratch copy becomes the returned model only after the probe is done with it
    assert any(w is res.model for w in seen)
    assert no_instance_forward(res.model) and no_instance_forward(model)


def test_enable_fast_propagates_errors_other_than_torch_tracing_errors(tiny, monkeypatch):
    model, codes, _, _ = tiny

    class Boom(Exception):
        pass

    def boom(*args, **kwargs):
        raise Boom("not a tracing error")

    def runtime(*args, **kwargs):
        raise RuntimeError("vmap cannot trace this")

    reference = forget(model, codes, [1], on_failure="return")
    assert reference.report.details["probe"] == "fast"
    monkeypatch.setattr(probe_module, "_cacheable_linears", boom)
    with pytest.raises(Boom):
        forget(model, codes, [1], on_failure="return")
    monkeypatch.setattr(probe_module, "_cacheable_linears", runtime)
    res = forget(model, codes, [1], on_failure="return")
    assert res.report.details["probe"] == "generic"
    assert res.report.status == reference.report.status
    assert (res.report.lambda1, res.report.lambda2, res.report.sign) == (
        reference.report.lambda1, reference.report.lambda2, reference.report.sign)


def test_screened_scan_chooses_what_a_scan_of_every_code_chooses(monkeypatch):
    # 120 classes: candidates are screened on the forget code and the remaining codes nearest
    # to changing class, then checked on every code; a scan of every code must agree, met or not
    from mnemo_tutorial.core import selection

    model, codes, _, _ = trained_tiny(seed=3, num_classes=120, dim=24, steps=400)
    screened = {c: forget(model, codes, [c], on_failure="return").report for c in (0, 7, 50, 119)}
    monkeypatch.setattr(selection, "SCREEN_REMAINING", 10**6)  # no screen: every code, every time
    outcomes = set()
    for c, rep in screened.items():
        every = forget(model, codes, [c], on_failure="return").report
        assert (rep.lambda1, rep.lambda2, rep.sign, rep.status) == (
            every.lambda1, every.lambda2, every.sign, every.status), c
        assert rep.details["candidates_evaluated"] == every.details["candidates_evaluated"]
        assert every.details["candidates_checked"] == 0 < rep.details["candidates_checked"]
        outcomes.add(rep.status)
    assert "ok" in outcomes
