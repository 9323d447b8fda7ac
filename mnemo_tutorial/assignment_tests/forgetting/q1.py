from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 4

@test_case(points=None, hidden=False)
def test_q1_public(class_fisher):
    import torch
    from mnemo_tutorial import MnemonicCodes
    from mnemo_tutorial.core.fisher import per_sample_sq_grads
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 5), torch.nn.Sigmoid(), torch.nn.Linear(5, 4)).double()
    codes = MnemonicCodes(torch.rand(4, 2, 4, dtype=torch.float64))
    got = class_fisher(m, codes)
    assert got is not None, 'class_fisher returned None: not implemented yet'
    sq = per_sample_sq_grads(m, codes.codes, codes.labels())
    total = sum((v.flatten(1).sum(1) for v in sq.values()))
    assert set(got) == set(sq), 'one entry per parameter tensor'
    for k, v in sq.items():
        assert got[k].shape == v.shape, f'{k}: shape {tuple(got[k].shape)}, expected (C, *param.shape)'
        expected = v / total.view(-1, *[1] * (v.dim() - 1))
        assert torch.allclose(got[k].double(), expected, rtol=1e-06, atol=1e-15), f'{k}: normalise each class over all weights together'

