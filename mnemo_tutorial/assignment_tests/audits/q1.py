from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 4

@test_case(points=None, hidden=False)
def test_q1_public(ef_ar):
    import torch
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    p = torch.tensor([0, 1, 2, 2, 1, 0, 2, 2, 2, 1])
    e_f, a_r = ef_ar(p, y, [0])
    assert abs(e_f - 75.0) < 1e-06, f'E_F {e_f}: expected 75 (3 of 4 forgotten samples wrong), in percent'
    assert abs(a_r - 66.6667) < 0.001, f'A_R {a_r}: expected 66.67 (4 of 6 remaining samples right), in percent'

