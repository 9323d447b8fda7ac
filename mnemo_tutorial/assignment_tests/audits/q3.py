from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 4

@test_case(points=None, hidden=False)
def test_q3_public(mia_auc):
    import torch
    members = torch.tensor([0.1, 0.2, 0.5])
    nonmembers = torch.tensor([0.3, 0.5, 0.9, 1.0])
    got = mia_auc(members, nonmembers)
    assert got is not None, 'mia_auc returned None: not implemented yet'
    got = float(got)
    assert abs(got - (4 + 4 + 2.5) / 12) < 1e-09, f"AUC {got}, expected {(4 + 4 + 2.5) / 12:.4f}: the share of (member, non-member) pairs where the member's loss is lower, a tie counting 1/2"

