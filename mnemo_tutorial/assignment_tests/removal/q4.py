from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 4

@test_case(points=None, hidden=False)
def test_q4_public(js_to_reference):
    import math
    import torch
    torch.manual_seed(41)
    model, reference = (torch.nn.Linear(3, 4), torch.nn.Linear(3, 4))
    with torch.no_grad():
        model.weight.mul_(4.0)
    x = torch.randn(40, 3)
    y = torch.arange(40) % 4
    got = js_to_reference(model, reference, x, y, [1])
    assert got is not None, 'js_to_reference: not implemented yet (it returns None)'
    with torch.no_grad():
        p = torch.softmax(model(x[y == 1]).double(), 1)
        q = torch.softmax(reference(x[y == 1]).double(), 1)
    m = 0.5 * (p + q)
    expected = float((0.5 * (p * (p / m).log()).sum(1) + 0.5 * (q * (q / m).log()).sum(1)).mean())
    got = float(got)
    assert math.isfinite(got) and abs(got - expected) < 1e-05, f"{got:.6f}, expected {expected:.6f}: the mean JS between the two models' softmax outputs over the samples labelled 1, against the reference passed in"

