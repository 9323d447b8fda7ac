from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 4

@test_case(points=None, hidden=False)
def test_q2_public(suppress_model):
    import copy
    import torch

    class Tiny(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(6, 5)
            self.fc2 = torch.nn.Linear(5, 4)

        def forward(self, x):
            return self.fc2(torch.sigmoid(self.fc1(x.flatten(1))))
    torch.manual_seed(22)
    model = Tiny()
    with torch.no_grad():
        model.fc2.weight.mul_(3.0)
        model.fc2.bias[2] += 5.0
    code_x = torch.rand(4, 1, 6)
    before = copy.deepcopy(model.state_dict())
    new = suppress_model(model, code_x, [2], margin=3.0)
    assert new is not None, 'suppress_model: not implemented yet (it returns None)'
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f'the input model changed ({k}): edit a deep copy'
    with torch.no_grad():
        z = model(code_x)[2].double()
    need = float(z[2] - z[[0, 1, 3]].max() + 3.0)
    assert need > 0, 'the case must need a shift'
    after = new.state_dict()
    for k, v in before.items():
        if k != 'fc2.bias':
            assert torch.equal(after[k], v), f'{k} changed: only fc2.bias may change'
    expected = before['fc2.bias'].clone().double()
    expected[2] -= need
    got = after['fc2.bias'].double()
    assert torch.allclose(got, expected, atol=0.0001), f"fc2.bias {got.tolist()}, expected {expected.tolist()}: lower the forgotten class's bias by {need:.4f} (margin 3) and leave the other classes' biases alone"

