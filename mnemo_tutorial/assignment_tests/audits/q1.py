from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 4

@test_case(points=None, hidden=False)
def test_q1_public(ef_ar):
    import torch
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    p = torch.tensor([0, 1, 2, 2, 1, 0, 2, 2, 2, 1])
    got = ef_ar(p, y, [0])
    assert got is not None, 'ef_ar returned None: not implemented yet'
    assert isinstance(got, (tuple, list)) and len(got) == 2, 'return the pair (E_F, A_R)'
    e_f, a_r = got
    assert abs(e_f - 75.0) < 1e-06, f'E_F {e_f}: expected 75 (3 of the 4 samples labelled 0 are wrong), in percent; select the samples by their label, not their prediction'
    assert abs(a_r - 66.6667) < 0.001, f'A_R {a_r}: expected 66.67 (4 of the 6 samples with other labels are right), in percent'

