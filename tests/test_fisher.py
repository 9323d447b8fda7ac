import pytest
import torch
from torch import nn

from mnemo_tutorial.core.fisher import (
    code_fisher,
    fisher_by_class,
    fisher_loop,
    grouped_fisher,
    oracle_fisher,
    per_sample_sq_grads,
    stable_cross_entropy,
)
from mnemo_tutorial.training.models import MLP


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def reference(model, x, y, weights, normalize=False, params=None, dtype=None):
    """The per-sample route written out: squared per-sample gradients of the named tensors,
    each sample divided by its total over those tensors, weighted sums."""
    sq = per_sample_sq_grads(model, x, y, dtype=dtype)
    names = list(sq) if params is None else [k for k in sq if k in params]
    sq = {k: sq[k] for k in names}
    w = weights.to(next(iter(sq.values())).dtype)
    if normalize:
        total = sum(v.flatten(1).sum(1) for v in sq.values())
        w = w / torch.where(total > 0, total, torch.ones_like(total))
    return [{k: torch.einsum("n,n...->...", w[g], v) for k, v in sq.items()} for g in range(w.shape[0])]


def assert_groups_close(fast, ref, rtol=1e-4, atol=1e-9):
    assert len(fast) == len(ref)
    for f, r in zip(fast, ref):
        assert list(f) == list(r)
        for k in r:
            assert f[k].dtype == r[k].dtype, k
            torch.testing.assert_close(f[k], r[k], rtol=rtol, atol=atol)


def group_weights(n=9, groups=((1, 4, 7, 8), (0, 2, 3, 5, 6))):
    w = torch.zeros(len(groups), n)
    for g, members in enumerate(groups):
        w[g, list(members)] = 1.0 / len(members)
    return w


Y9 = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 1])


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
    with pytest.raises(ValueError, match="batch_size"):
        oracle_fisher(model, x, y, batch_size=0)


def test_code_fisher_normalisation():
    model = MLP(in_features=12, hidden=8, num_classes=4)
    codes = torch.rand(4, 12)
    raw = code_fisher(model, codes)
    norm = code_fisher(model, codes, normalize=True)
    sq = per_sample_sq_grads(model, codes, torch.arange(4))
    for k in raw:
        torch.testing.assert_close(raw[k], sq[k], rtol=1e-4, atol=1e-10)
    totals = sum(v.flatten(1).sum(1) for v in norm.values())
    torch.testing.assert_close(totals, torch.ones(4))
    f64 = code_fisher(model, codes, dtype=torch.float64)
    for k in raw:
        assert f64[k].dtype == torch.float32
        torch.testing.assert_close(f64[k], raw[k], rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize("normalize", [False, True])
def test_grouped_fisher_equals_per_sample_route(normalize):
    torch.manual_seed(1)
    models = [tiny_model(), nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))]
    inputs = [torch.randn(9, 6), torch.randn(9, 1, 6)]
    for model, x in zip(models, inputs):
        fast = grouped_fisher(model, x, Y9, group_weights(), normalize=normalize)
        assert_groups_close(fast, reference(model, x, Y9, group_weights(), normalize))
        assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="weights"):
        grouped_fisher(models[0], inputs[0], Y9, torch.ones(1, 5))


class Block(nn.Module):
    """A residual block with batch norm (as in ResNet)."""

    def __init__(self, ch):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
        self.conv2, self.bn2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def resnet_like():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), Block(4),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model.train()
    with torch.no_grad():  # non-trivial running statistics
        for _ in range(3):
            model(torch.randn(16, 1, 6, 6))
    return model.eval()


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.b(torch.tanh(self.a(torch.tanh(self.a(x)))))


class Tokens(nn.Module):
    """A Linear applied to (N, T, in) input, then a mean over T."""

    def __init__(self):
        super().__init__()
        self.proj, self.head = nn.Linear(3, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.proj(x.view(x.shape[0], 2, 3))).mean(1))


class FlatTokens(Tokens):
    """The same Linear on (N * T, in) rows: 2-D input whose rows are not the samples."""

    def forward(self, x):
        h = torch.tanh(self.proj(x.reshape(-1, 3))).view(x.shape[0], 2, 5)
        return self.head(h.mean(1))


@pytest.mark.parametrize("kind", ["resnet", "reused", "tokens", "flat_tokens"])
@pytest.mark.parametrize("normalize", [False, True])
def test_grouped_fisher_on_models_beyond_linear(kind, normalize):
    torch.manual_seed(3)
    model, x = {"resnet": (resnet_like, (9, 1, 6, 6)), "reused": (Reused, (9, 6)),
                "tokens": (Tokens, (9, 6)), "flat_tokens": (FlatTokens, (9, 6))}[kind]
    model, x = model(), torch.randn(*x)
    fast = grouped_fisher(model, x, Y9, group_weights(), normalize=normalize)
    assert_groups_close(fast, reference(model, x, Y9, group_weights(), normalize), atol=1e-8)
    assert all(p.grad is None for p in model.parameters())


def test_frozen_parameters_and_float64_model():
    model = tiny_model().double()
    model[1].weight.requires_grad_(False)
    x = torch.randn(9, 6, dtype=torch.float64)
    fast = grouped_fisher(model, x, Y9, group_weights(), normalize=True)
    assert fast[0]["1.weight"].dtype == torch.float64
    assert float(fast[0]["1.weight"].abs().sum()) > 0  # a frozen tensor still has a Fisher
    assert_groups_close(fast, reference(model, x, Y9, group_weights(), True), rtol=1e-10, atol=1e-14)
    assert model[1].weight.requires_grad is False and model[3].weight.requires_grad is True
    # compute in float64 for a float32 model
    m32 = tiny_model()
    f64 = grouped_fisher(m32, x.float(), Y9, group_weights(), dtype=torch.float64)
    assert f64[1]["3.bias"].dtype == torch.float64
    assert_groups_close(f64, reference(m32, x.float(), Y9, group_weights(), dtype=torch.float64), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("model_fn, x_shape", [(tiny_model, (9, 6)), (resnet_like, (9, 1, 6, 6))])
def test_params_restriction_equals_frozen_rest(model_fn, x_shape):
    """The Fisher of the named tensors, normalised over them, equals the normalised Fisher of
    a model in which those tensors are the only parameters (the others made buffers)."""
    model = model_fn()
    x = torch.randn(*x_shape)
    names = [k for k, _ in model.named_parameters()]
    keep = names[-2:]  # the head
    part = grouped_fisher(model, x, Y9, group_weights(), normalize=True, params=keep)
    assert [list(p) for p in part] == [keep, keep]
    # by hand: gradients of the head only, normalised by the head's squared gradient norm
    sq = {k: [] for k in keep}
    params = dict(model.named_parameters())
    for i in range(9):
        loss = stable_cross_entropy(model(x[i : i + 1]), Y9[i : i + 1])
        for k, g in zip(keep, torch.autograd.grad(loss, [params[k] for k in keep])):
            sq[k].append(g.square())
    sq = {k: torch.stack(v) for k, v in sq.items()}
    total = sum(v.flatten(1).sum(1) for v in sq.values())
    w = group_weights() / total
    for g in range(2):
        for k in keep:
            torch.testing.assert_close(part[g][k], torch.einsum("n,n...->...", w[g], sq[k]), rtol=1e-4, atol=1e-9)
    whole = grouped_fisher(model, x, Y9, group_weights(), normalize=True)
    assert not torch.allclose(whole[0][keep[0]], part[0][keep[0]], rtol=1e-3)  # normalised over fewer tensors
    with pytest.raises(ValueError, match="params"):
        grouped_fisher(model, x, Y9, group_weights(), params=["nope"])
    with pytest.raises(ValueError, match="params"):
        grouped_fisher(model, x, Y9, group_weights(), params=[])


def test_chunking_equals_unchunked():
    model = resnet_like()
    x = torch.randn(9, 1, 6, 6)
    one = grouped_fisher(model, x, Y9, group_weights(), normalize=True)
    for budget in (1, 2000):  # one sample per chunk; five samples per chunk (352 entries each)
        assert_groups_close(grouped_fisher(model, x, Y9, group_weights(), normalize=True, max_elements=budget), one,
                            rtol=1e-5, atol=1e-10)


# ----------------------------------------------------------------------------- shared weights
class TiedLinears(nn.Module):
    """Two Linear modules holding one Parameter (weight tying, as in tied embeddings)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.a = nn.Linear(5, 5)
        self.b = nn.Linear(5, 5)
        self.b.weight = self.a.weight
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.b(torch.tanh(self.a(x)))))


class LinearAlsoInMatmul(nn.Module):
    """A Linear called once whose weight is also used in a plain matmul."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.a = nn.Linear(5, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return self.out(torch.tanh(h @ self.a.weight.T))


@pytest.mark.parametrize("model_fn", [TiedLinears, LinearAlsoInMatmul])
@pytest.mark.parametrize("normalize", [False, True])
def test_grouped_fisher_with_shared_weights(model_fn, normalize):
    model = model_fn().eval()
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(9, 5, generator=g), torch.randint(0, 3, (9,), generator=g)
    w = group_weights()
    fast = grouped_fisher(model, x, y, w, normalize=normalize)
    ref = reference(model, x, y, w, normalize=normalize)
    assert_groups_close(fast, ref)
    if not normalize:  # and the one-backward-per-sample route
        loop = fisher_loop(model, x, y)["a.weight"]
        want = torch.einsum("n,n...->...", w[0], loop)
        torch.testing.assert_close(fast[0]["a.weight"], want, rtol=1e-4, atol=1e-9)
