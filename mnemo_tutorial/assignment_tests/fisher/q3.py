from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 4

@test_case(points=None, hidden=False)
def test_q3_public(diag_fisher):
    import torch
    from mnemo_tutorial.core.fisher import per_sample_sq_grads
    from mnemo_tutorial.grading import package_blocked
    torch.manual_seed(3)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (10,))
    ref = {k: v.mean(0) for k, v in per_sample_sq_grads(m, x, y).items()}
    with package_blocked(diag_fisher, allow=('per_sample_sq_grads',)):
        got = diag_fisher(m, x, y)
    assert got is not None, 'diag_fisher: not implemented yet (it returns None)'
    assert isinstance(got, dict) and set(got) == set(ref), 'return {parameter name: tensor}'
    for k in ref:
        assert got[k].shape == ref[k].shape, f"{k}: shape {tuple(got[k].shape)}, expected the parameter's shape {tuple(ref[k].shape)}"
        ratio = (got[k].double().sum() / ref[k].sum()).item()
        assert torch.allclose(got[k].double(), ref[k], rtol=1e-05, atol=1e-12), f'{k}: values differ from the mean (over the N = 10 samples) of the squared per-sample gradients (sum of yours / expected = {ratio:.4f})'

