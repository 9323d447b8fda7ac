from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 4

@test_case(points=None, hidden=False)
def test_q2_public(sensitivity_ratio):
    import torch
    from mnemo_tutorial import sensitivity
    g = torch.Generator().manual_seed(2)
    fisher = {'a': torch.rand(5, 3, 4, generator=g, dtype=torch.float64), 'b': torch.rand(5, 2, generator=g, dtype=torch.float64)}
    got = sensitivity_ratio(fisher, [1])
    assert got is not None, 'sensitivity_ratio returned None: not implemented yet'
    keep = torch.tensor([0, 2, 3, 4])
    ref = sensitivity({k: v[1] for k, v in fisher.items()}, {k: v[keep].mean(0) for k, v in fisher.items()})
    assert set(got) == set(ref), 'one entry per parameter tensor'
    for k in ref:
        assert got[k].shape == ref[k].shape, f"{k}: shape {tuple(got[k].shape)}, expected the parameter's shape"
        assert torch.allclose(got[k].double(), ref[k].double(), rtol=1e-09), f'{k}: eta = f_F / (f_R + 1e-16), f_R the mean over every class not forgotten'

