from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 4

@test_case(points=None, hidden=False)
def test_q3_public(js_divergence):
    import math
    import torch
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]], dtype=torch.float64)
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0], [0.6, 0.4]], dtype=torch.float64)
    got = js_divergence(p.clone(), q.clone())
    assert got is not None, 'js_divergence: not implemented yet (it returns None)'
    got = torch.as_tensor(got, dtype=torch.float64)
    assert tuple(got.shape) == (3,), f'one divergence per row; got shape {tuple(got.shape)}'
    third = 0.5 * (0.2 * math.log(0.2 / 0.4) + 0.8 * math.log(0.8 / 0.6)) + 0.5 * (0.6 * math.log(0.6 / 0.4) + 0.4 * math.log(0.4 / 0.6))
    expected = torch.tensor([0.0, math.log(2), third], dtype=torch.float64)
    assert torch.isfinite(got).all(), f'{got.tolist()}: a zero probability must count 0, not give nan or inf'
    assert torch.allclose(got, expected, atol=1e-06), f'{got.tolist()}, expected {[round(v, 6) for v in expected.tolist()]}: equal rows give 0, rows that share no class ln 2 (natural log, both halves weighted 1/2)'

