from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 4

@test_case(points=None, hidden=False)
def test_q4_public(perturb):
    import torch
    torch.manual_seed(4)
    m = torch.nn.Linear(3, 2)
    w0, b0 = (m.weight.detach().clone(), m.bias.detach().clone())
    eta = {'weight': torch.arange(6.0).view(2, 3), 'bias': torch.tensor([1.0, -2.0])}
    steps = {'weight': 0.1, 'bias': 0.5}
    for s in (1, -1):
        new = perturb(m, eta, steps, s)
        assert new is not None, 'perturb returned None: not implemented yet'
        assert new is not m, 'return a new model'
        assert torch.equal(m.weight, w0) and torch.equal(m.bias, b0), 'the input model must not change'
        assert torch.allclose(new.weight, w0 + s * 0.1 * eta['weight']), f'weight with sign {s:+d}'
        assert torch.allclose(new.bias, b0 + s * 0.5 * eta['bias']), f'bias with sign {s:+d}'

