from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 4

@test_case(points=None, hidden=False)
def test_q1_public(draw_codes):
    import torch
    from mnemo_tutorial import MnemonicCodes
    state = torch.get_rng_state()
    got = draw_codes(4, (1, 3, 3), 7, 'uniform')
    assert got is not None, 'draw_codes: not implemented yet (it returns None)'
    assert torch.equal(torch.get_rng_state(), state), "draw_codes changed torch's global random state: draw from your own torch.Generator, not torch.manual_seed"
    for dist in ('uniform', 'normal'):
        got = draw_codes(4, (1, 3, 3), 7, dist)
        ref = MnemonicCodes.random(4, (1, 3, 3), seed=7, distribution=dist).codes
        assert tuple(got.shape) == (4, 1, 3, 3), f'shape {tuple(got.shape)}, expected (num_classes, *shape)'
        assert torch.equal(got, ref), f'{dist} codes differ from MnemonicCodes.random with the same seed'

