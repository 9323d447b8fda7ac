from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 4

@test_case(points=None, hidden=False)
def test_q3_public(diag_fisher):
    import torch
    from mnemo_tutorial.core.fisher import per_sample_sq_grads
    torch.manual_seed(3)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (10,))
    got = diag_fisher(m, x, y)
    ref = {k: v.mean(0) for k, v in per_sample_sq_grads(m, x, y).items()}
    assert isinstance(got, dict) and set(got) == set(ref), 'return {parameter name: tensor}'
    for k in ref:
        assert got[k].shape == ref[k].shape, f"{k}: shape {tuple(got[k].shape)}, expected the parameter's shape {tuple(ref[k].shape)}"
        assert torch.allclose(got[k].double(), ref[k], rtol=1e-05, atol=1e-12), f'{k}: values differ from the mean of the squared per-sample gradients'

