from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 4

@test_case(points=None, hidden=False)
def test_q5_public(logistic_emp_fisher):
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(5)
    X = torch.randn(20, 3, generator=g, dtype=torch.float64)
    y = (torch.rand(20, generator=g) < 0.5).double()
    w = torch.tensor([1.0, -0.5, 0.3], dtype=torch.float64, requires_grad=True)
    rows = []
    for n in range(20):
        gn, = torch.autograd.grad(F.binary_cross_entropy_with_logits(X[n] @ w, y[n]), w)
        rows.append(gn)
    G = torch.stack(rows)
    expected = G.T @ G / 20
    got = logistic_emp_fisher(X, y, w.detach())
    assert got is not None, 'logistic_emp_fisher: not implemented yet (it returns None)'
    assert tuple(got.shape) == (3, 3), f'shape {tuple(got.shape)}: return the (d, d) matrix'
    assert torch.allclose(got.double(), expected, rtol=1e-06, atol=1e-10), 'not the mean outer product of the per-sample gradients (labels y are 0 or 1)'

