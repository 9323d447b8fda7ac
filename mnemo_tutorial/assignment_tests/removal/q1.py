from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 4

@test_case(points=None, hidden=False)
def test_q1_public(suppression_shift):
    import torch
    logits = torch.tensor([[9.0, 0.0, 1.0, 0.0], [0.0, 5.0, 1.0, 4.0], [0.0, 0.0, 9.0, 0.0], [2.0, 7.0, 0.0, 6.0]])
    got = suppression_shift(logits.clone(), [1, 3], 2.0)
    assert got is not None, 'suppression_shift: not implemented yet (it returns None)'
    got = torch.as_tensor(got, dtype=torch.float64).flatten()
    assert tuple(got.shape) == (2,), f'one shift per forgotten class; got shape {tuple(got.shape)}'
    assert torch.allclose(got, torch.tensor([7.0, 6.0], dtype=torch.float64)), f'shifts {got.tolist()}, expected [7, 6]: class c must end margin below the best remaining class on every forget code (code 3 needs 7 for class 1)'
    low = torch.tensor([[5.0, 0.0, 1.0], [0.0, 5.0, 1.0], [3.0, 0.0, 1.0]])
    got = torch.as_tensor(suppression_shift(low, [2], 1.0), dtype=torch.float64).flatten()
    assert torch.allclose(got, torch.zeros(1, dtype=torch.float64)), f'shift {got.tolist()}, expected [0]: class 2 is already 2 logits below class 0 on its code, so it needs no shift (a negative one would raise its bias)'

