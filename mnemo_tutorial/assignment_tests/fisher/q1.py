from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 4

@test_case(points=None, hidden=False)
def test_q1_public(sq_grads_loop):
    import torch
    from mnemo_tutorial.core.fisher import per_sample_sq_grads
    from mnemo_tutorial.grading import package_blocked
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    ref = per_sample_sq_grads(m, x, y)
    with package_blocked(sq_grads_loop):
        got = sq_grads_loop(m, x, y)
    assert got is not None, 'sq_grads_loop: not implemented yet (it returns None)'
    assert isinstance(got, dict) and set(got) == set(ref), 'return {parameter name: tensor}'
    for k in ref:
        assert got[k].shape == ref[k].shape, f'{k}: shape {tuple(got[k].shape)}, expected (N, *param.shape) = {tuple(ref[k].shape)}'
        assert torch.allclose(got[k].double(), ref[k], rtol=1e-05, atol=1e-12), f'{k}: values differ from the squared per-sample gradients'
    assert all((p.grad is None for p in m.parameters())), "the model's parameters have a .grad afterwards: use torch.autograd.grad, not backward()"

