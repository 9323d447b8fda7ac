from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 4

@test_case(points=None, hidden=False)
def test_q4_public(logistic_fisher):
    import torch
    import torch.autograd.functional as taf
    import torch.func as tfunc
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(4)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = (torch.rand(30, generator=g) < 0.5).double()
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda v: F.binary_cross_entropy_with_logits(X @ v, y), w)

    def refuse(*args, **kwargs):
        raise AssertionError('logistic_fisher differentiated the loss with autograd: write the closed form')
    names = ('hessian', 'jacobian', 'jacrev', 'jacfwd')
    spaces = [vars(taf), vars(tfunc), getattr(logistic_fisher, '__globals__', {})]
    originals = [getattr(taf, n, None) for n in names] + [getattr(tfunc, n, None) for n in names]
    saved = [(ns, k, v) for ns in spaces for k, v in list(ns.items()) if any((v is o for o in originals if o is not None))]
    for ns, k, _ in saved:
        ns[k] = refuse
    try:
        got = logistic_fisher(X, w)
    finally:
        for ns, k, v in saved:
            ns[k] = v
    assert got is not None, 'logistic_fisher: not implemented yet (it returns None)'
    assert tuple(got.shape) == (3, 3), f'shape {tuple(got.shape)}: return the (d, d) matrix'
    assert torch.allclose(got.double(), H, rtol=1e-06, atol=1e-10), 'not equal to the Hessian of the mean loss'

