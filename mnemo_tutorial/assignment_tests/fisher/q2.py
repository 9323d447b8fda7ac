from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 4

@test_case(points=None, hidden=False)
def test_q2_public(sq_grads_vmap):
    import torch
    from mnemo_tutorial.core.fisher import per_sample_sq_grads
    torch.manual_seed(2)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 1])
    got = sq_grads_vmap(m, x, y)
    ref = per_sample_sq_grads(m, x, y)
    assert isinstance(got, dict) and set(got) == set(ref), 'return {parameter name: tensor}'
    for k in ref:
        assert got[k].shape == ref[k].shape, f'{k}: shape {tuple(got[k].shape)}, expected {tuple(ref[k].shape)}'
        assert torch.allclose(got[k].double(), ref[k], rtol=1e-05, atol=1e-12), f'{k}: values differ from the package'

