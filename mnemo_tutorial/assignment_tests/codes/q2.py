from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 4

@test_case(points=None, hidden=False)
def test_q2_public(mix_batch):
    import torch
    from mnemo_tutorial import MnemonicCodes
    codes = MnemonicCodes.random(3, (2, 2), seed=0)
    x = torch.full((400, 2, 2), -1.0)
    y = torch.arange(400) % 3
    x_before = x.clone()
    result = mix_batch(x, y, codes.codes, 0.25, torch.Generator().manual_seed(5))
    assert result is not None, 'mix_batch: not implemented yet (it returns None)'
    got, mask = result
    ref, ref_mask = codes.mix_batch(x, y, 0.25, torch.Generator().manual_seed(5))
    assert torch.equal(x, x_before), 'x must not be changed in place'
    assert mask.dtype == torch.bool and torch.equal(mask, ref_mask), 'swap exactly the samples whose draw is below t_mix'
    assert torch.equal(got, ref), "each swapped sample must become its own class's code"

