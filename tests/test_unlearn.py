import copy

import pytest
import torch
from torch import nn

from mnemo_tutorial.codes import MnemonicCodes
from mnemo_tutorial.fisher import code_fisher, mean_over
from mnemo_tutorial.metrics import forget_metrics
from mnemo_tutorial.models import MLP
from mnemo_tutorial.unlearn import check_forget_classes, forget, layer_steps, sensitivity


def trained_tiny(seed=0, num_classes=4, dim=12, steps=300):
    """A small MLP trained on separable Gaussian blobs plus the codes."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g) * 3
    y = torch.randint(0, num_classes, (600,), generator=g)
    x = (centers[y] + torch.randn(600, dim, generator=g)).sigmoid()
    codes = MnemonicCodes.random(num_classes, (dim,), seed=seed)
    torch.manual_seed(seed)
    model = MLP(in_features=dim, hidden=64, num_classes=num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        xb, _ = codes.mix_batch(x, y, 0.3, g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), y).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    return model, codes, x, y


def test_sensitivity_and_layer_steps_by_hand():
    f_f = {"a": torch.tensor([4.0, 0.0, 1.0]), "b": torch.tensor([[2.0]])}
    f_r = {"a": torch.tensor([2.0, 0.0, 0.0]), "b": torch.tensor([[0.5]])}
    eta = sensitivity(f_f, f_r, eps=1e-16)
    torch.testing.assert_close(eta["a"], torch.tensor([2.0, 0.0, 1e16]))
    torch.testing.assert_close(eta["b"], torch.tensor([[4.0]]))
    steps = layer_steps(eta, lambda1=1e-3, lambda2=10.0)
    assert steps["a"] == pytest.approx(min(1e-3, 10.0 / 1e16))
    assert steps["b"] == pytest.approx(min(1e-3, 10.0 / 4.0))
    nan = sensitivity({"a": torch.tensor([float("nan")])}, {"a": torch.tensor([1.0])})
    assert nan["a"].item() == 0.0


def test_perturbation_equals_formula_on_tiny_model():
    model, codes, _, _ = trained_tiny()
    lam1, lam2 = 1e-2, 0.5
    res = forget(model, codes, [1], lambdas=(lam1, lam2), sign=-1, normalize_fisher=False)
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


def test_input_model_untouched_modes_restored_no_grads():
    model, codes, _, _ = trained_tiny()
    before = copy.deepcopy(model.state_dict())
    for mode in (True, False):
        model.train(mode)
        res = forget(model, codes, [2])
        assert model.training is mode and res.model.training is mode
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k])
        assert all(p.grad is None for p in model.parameters())
        assert all(p.grad is None for p in res.model.parameters())
        assert res.model is not model


def test_sign_choice_follows_code_score():
    model, codes, _, _ = trained_tiny()
    res = forget(model, codes, [0], lambdas=(1.0, 50.0))
    scores = {}
    for s in (1, -1):
        m = forget(model, codes, [0], lambdas=(1.0, 50.0), sign=s).model
        pred = m(codes.codes).argmax(1)
        scores[s] = float(pred[0] != 0) + float((pred[1:] == torch.arange(1, 4)).float().mean())
    assert scores[res.report.sign] == max(scores.values())


def test_auto_forgets_each_class_of_tiny_model_from_codes_only():
    model, codes, x, y = trained_tiny()
    for c in range(4):
        res = forget(model, codes, [c])
        assert res.report.selection == "data-free"
        m = forget_metrics(res.model(x).argmax(1), y, [c], 4)
        assert m["E_F"] >= 85.0, (c, m)
        assert m["A_R"] >= 95.0, (c, m)
        assert res.report.seconds > 0


def test_validation_selection_and_several_classes():
    model, codes, x, y = trained_tiny()
    res = forget(model, codes, [0, 3], validation=(x[:200], y[:200]))
    assert res.report.selection == "validation" and res.report.forget == [0, 3]
    m = forget_metrics(res.model(x[200:]).argmax(1), y[200:], [0, 3], 4)
    assert m["E_F"] >= 95.0 and m["A_R"] >= 90.0


def test_same_seed_gives_bit_identical_weights():
    m1, c1, _, _ = trained_tiny(seed=5)
    m2, c2, _, _ = trained_tiny(seed=5)
    assert torch.equal(c1.codes, c2.codes)
    r1, r2 = forget(m1, c1, [1]), forget(m2, c2, [1])
    for (k, a), (_, b) in zip(r1.model.state_dict().items(), r2.model.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("bad, word", [
    ([], "at least one"), ([4], "0..3"), ([-1], "0..3"), ([1, 1], "twice"),
    ([0, 1, 2, 3], "leave at least one"), (["x"], "class indices"),
])
def test_bad_forget_sets(bad, word):
    model, codes, _, _ = trained_tiny(steps=1)
    with pytest.raises(ValueError, match=word):
        forget(model, codes, bad)
    with pytest.raises(ValueError, match=word):
        check_forget_classes(bad, 4)


@pytest.mark.parametrize("kwargs, word", [
    (dict(lambdas="best"), "lambdas"), (dict(lambdas=(0, 1)), "lambdas"),
    (dict(sign=2), "sign"), (dict(margin=-1.0), "margin"),
])
def test_bad_options(kwargs, word):
    model, codes, _, _ = trained_tiny(steps=1)
    with pytest.raises(ValueError, match=word):
        forget(model, codes, [0], **kwargs)


def test_mlp_fast_probe_equals_generic_forward():
    from mnemo_tutorial.unlearn import _CodeProbe

    model, codes, _, _ = trained_tiny()
    eta = {k: torch.rand_like(v) for k, v in model.named_parameters()}
    steps = {k: 0.3 * (i + 1) for i, k in enumerate(eta)}
    probe = _CodeProbe(model, codes.codes, torch.arange(4), [1], 4)
    fast = probe.logits(steps, eta, -1)
    params = {k: v.detach() - steps[k] * eta[k] for k, v in model.named_parameters()}
    slow = torch.func.functional_call(model, params, (codes.codes,))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


def test_params_restricts_the_step():
    model, codes, x, y = trained_tiny()
    res = forget(model, codes, [1], params=["fc2.weight", "fc2.bias"])
    new = dict(res.model.named_parameters())
    old = dict(model.named_parameters())
    assert torch.equal(new["fc1.weight"], old["fc1.weight"]) and torch.equal(new["fc1.bias"], old["fc1.bias"])
    assert not torch.equal(new["fc2.weight"], old["fc2.weight"])
    assert res.report.details["params"] == ["fc2.weight", "fc2.bias"]
    with pytest.raises(ValueError, match="params"):
        forget(model, codes, [1], params=["nope"])
