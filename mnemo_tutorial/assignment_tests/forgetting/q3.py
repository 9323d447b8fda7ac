from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 4

@test_case(points=None, hidden=False)
def test_q3_public(per_layer_steps):
    import torch
    from mnemo_tutorial import layer_steps
    eta = {'a': torch.tensor([1.0, 50.0, 3.0]), 'b': torch.tensor([[0.5, 2.0]]), 'c': torch.tensor([100000.0])}
    got = per_layer_steps(eta, 0.1, 10.0)
    ref = layer_steps(eta, 0.1, 10.0)
    assert set(got) == set(ref), 'one step per tensor'
    for k in ref:
        assert abs(float(got[k]) - ref[k]) <= 1e-09 * max(1.0, ref[k]), f'{k}: step {float(got[k])}, expected {ref[k]}'

