from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 4

@test_case(points=None, hidden=False)
def test_q4_public(code_confidence):
    import torch
    torch.manual_seed(4)
    m = torch.nn.Linear(5, 3)
    codes = torch.randn(3, 5)
    got = code_confidence(m, codes)
    assert got is not None, 'code_confidence: not implemented yet (it returns None)'
    ref = torch.softmax(m(codes), dim=1).diagonal().detach()
    assert tuple(got.shape) == (3,), 'one probability per class'
    assert not got.requires_grad, 'compute under torch.no_grad()'
    assert torch.allclose(got, ref, atol=1e-06), "probability of each code's own class"

