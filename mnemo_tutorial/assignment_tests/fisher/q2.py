from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 4

@test_case(points=None, hidden=False)
def test_q2_public(sq_grads_vmap):
    import torch
    from mnemo_tutorial.core.fisher import per_sample_sq_grads
    from mnemo_tutorial.grading import package_blocked
    torch.manual_seed(2)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 1])
    ref = per_sample_sq_grads(m, x, y)
    calls = []
    hook = m.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    try:
        with package_blocked(sq_grads_vmap):
            got = sq_grads_vmap(m, x, y)
    finally:
        hook.remove()
    assert got is not None, 'sq_grads_vmap: not implemented yet (it returns None)'
    assert isinstance(got, dict) and set(got) == set(ref), 'return {parameter name: tensor}'
    for k in ref:
        assert got[k].shape == ref[k].shape, f'{k}: shape {tuple(got[k].shape)}, expected {tuple(ref[k].shape)}'
        assert torch.allclose(got[k].double(), ref[k], rtol=1e-05, atol=1e-12), f'{k}: values differ from the squared per-sample gradients'
    assert len(calls) <= 2, f'the model ran {len(calls)} times for {len(y)} samples: vmap over the samples, no Python loop'

