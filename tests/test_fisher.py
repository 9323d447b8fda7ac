import pytest
import torch
from torch import nn

from mnemo_tutorial.fisher import (
    code_fisher, fisher_by_class, fisher_loop, mean_over, normalize_per_sample,
    oracle_fisher, per_sample_sq_grads, stable_cross_entropy,
)
from mnemo_tutorial.models import MLP


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def test_vectorised_equals_loop():
    model = tiny_model()
    x, y = torch.randn(7, 2, 3), torch.randint(0, 3, (7,))
    fast = per_sample_sq_grads(model, x, y)
    slow = fisher_loop(model, x, y)
    assert fast.keys() == slow.keys()
    for k in fast:
        assert fast[k].shape == (7, *dict(model.named_parameters())[k].shape)
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-5, atol=1e-9)
    assert all(p.grad is None for p in model.parameters())


def test_stable_cross_entropy_matches_and_keeps_gradient():
    z = torch.randn(4, 5, dtype=torch.float64)
    t = torch.tensor([0, 3, 2, 4])
    torch.testing.assert_close(stable_cross_entropy(z, t), nn.functional.cross_entropy(z, t))
    # a memorised sample: the standard form's gradient for the true logit rounds to 0 in float32
    z32 = torch.tensor([[30.0, 0.0, -2.0]], requires_grad=True)
    stable_cross_entropy(z32, torch.tensor([0])).backward()
    exact = -(torch.exp(torch.tensor(-30.0, dtype=torch.float64)) + torch.exp(torch.tensor(-32.0, dtype=torch.float64)))
    assert z32.grad[0, 0].item() != 0.0
    assert abs(z32.grad[0, 0].item() / exact.item() - 1) < 1e-4


def test_by_class_and_oracle():
    model = tiny_model()
    x, y = torch.randn(20, 6), torch.tensor([0, 1, 2, 0, 1] * 4)
    per, counts = fisher_by_class(model, x, y, num_classes=3, batch_size=6)
    sq = per_sample_sq_grads(model, x, y)
    assert counts.tolist() == [8, 8, 4]
    for k in sq:
        torch.testing.assert_close(per[k][2], sq[k][y == 2].mean(0))
    orc = oracle_fisher(model, x, y, batch_size=7)
    for k in sq:
        torch.testing.assert_close(orc[k], sq[k].mean(0))
    m = mean_over(per, [0, 2])
    for k in sq:
        torch.testing.assert_close(m[k], (per[k][0] + per[k][2]) / 2)


def test_code_fisher_normalisation():
    model = MLP(in_features=12, hidden=8, num_classes=4)
    codes = torch.rand(4, 12)
    raw = code_fisher(model, codes)
    norm = code_fisher(model, codes, normalize=True)
    totals = sum(v.flatten(1).sum(1) for v in norm.values())
    torch.testing.assert_close(totals, torch.ones(4))
    manual = normalize_per_sample(raw)
    for k in raw:
        torch.testing.assert_close(norm[k], manual[k])
    f64 = code_fisher(model, codes, dtype=torch.float64)
    for k in raw:
        assert f64[k].dtype == torch.float32
        torch.testing.assert_close(f64[k], raw[k], rtol=1e-4, atol=1e-10)


def test_group_means_match_direct_means():
    from mnemo_tutorial.fisher import group_means

    sq = {"w": torch.rand(5, 3, 2), "b": torch.rand(5, 4)}
    a, b = group_means(sq, [[1], [0, 2, 3, 4]])
    for k in sq:
        torch.testing.assert_close(a[k], sq[k][1])
        torch.testing.assert_close(b[k], sq[k][[0, 2, 3, 4]].mean(0))
    na, nb = group_means(sq, [[1], [0, 2, 3, 4]], normalize=True)
    norm = normalize_per_sample(sq)
    for k in sq:
        torch.testing.assert_close(na[k], norm[k][1])
        torch.testing.assert_close(nb[k], norm[k][[0, 2, 3, 4]].mean(0))


@pytest.mark.parametrize("normalize", [False, True])
def test_grouped_fisher_equals_per_sample_route(normalize):
    from mnemo_tutorial.fisher import group_means, grouped_fisher

    torch.manual_seed(1)
    models = [tiny_model(), nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))]
    inputs = [torch.randn(9, 6), torch.randn(9, 1, 6)]
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 1])
    groups = [[1, 4, 7, 8], [0, 2, 3, 5, 6]]
    for model, x in zip(models, inputs):
        weights = torch.zeros(2, 9)
        for g, members in enumerate(groups):
            weights[g, members] = 1.0 / len(members)
        fast = grouped_fisher(model, x, y, weights, normalize=normalize)
        ref = group_means(per_sample_sq_grads(model, x, y), groups, normalize=normalize)
        for g in range(2):
            assert fast[g].keys() == ref[g].keys()
            for k in ref[g]:
                torch.testing.assert_close(fast[g][k], ref[g][k], rtol=1e-4, atol=1e-9)
        assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="weights"):
        grouped_fisher(models[0], inputs[0], y, torch.ones(1, 5))
