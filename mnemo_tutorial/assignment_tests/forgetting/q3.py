from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 4

@test_case(points=None, hidden=False)
def test_q3_public(per_layer_steps):
    import torch
    from mnemo_tutorial import layer_steps
    eta = {'a': torch.tensor([1.0, 50.0, 3.0]), 'b': torch.tensor([[0.5, 2.0]]), 'c': torch.tensor([100000.0])}
    for lambda1, lambda2 in ((0.1, 10.0), (1000.0, 10.0)):
        got = per_layer_steps(eta, lambda1, lambda2)
        assert got is not None, 'per_layer_steps returned None: not implemented yet'
        ref = layer_steps(eta, lambda1, lambda2)
        assert set(got) == set(ref), 'one step per tensor'
        for k in ref:
            hint = '' if lambda1 < 1 else ' (a large lambda1: the step is lambda2 over the largest eta of the tensor, not its mean or sum)'
            assert abs(float(got[k]) - ref[k]) <= 1e-09 * max(1.0, ref[k]), f'lambda1={lambda1:g}, lambda2={lambda2:g}, {k}: step {float(got[k]):g}, expected {ref[k]:g}{hint}'

