from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 4

@test_case(points=None, hidden=False)
def test_q4_public(logistic_fisher):
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(4)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = (torch.rand(30, generator=g) < 0.5).double()
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda v: F.binary_cross_entropy_with_logits(X @ v, y), w)
    got = logistic_fisher(X, w)
    assert tuple(got.shape) == (3, 3), 'return the (d, d) matrix'
    assert torch.allclose(got.double(), H, rtol=1e-06, atol=1e-10), 'not equal to the Hessian of the mean loss'

