from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 4

@test_case(points=None, hidden=False)
def test_q2_public(sample_losses):
    import torch
    torch.manual_seed(2)
    m = torch.nn.Linear(4, 3)
    x, y = (torch.randn(7, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0]))
    got = sample_losses(m, x, y)
    assert got is not None, 'sample_losses returned None: not implemented yet'
    logp = torch.log_softmax(m(x), dim=1).detach()
    assert tuple(got.shape) == (7,), f'shape {tuple(got.shape)}: one loss per sample, (7,)'
    assert not got.requires_grad, 'compute without gradients (torch.no_grad())'
    assert torch.allclose(got, -logp[torch.arange(7), y], atol=1e-06), 'each loss is -log p(true label | x): log-softmax of the logits at the true label'

