from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 6

@test_case(points=None, hidden=False)
def test_q3_public_batches(train_with_codes):
    import torch

    class Recorder(torch.nn.Module):

        def __init__(self, net):
            super().__init__()
            self.net, self.seen = (net, [])

        def forward(self, x):
            if self.training:
                self.seen.append(x.detach().clone())
            return self.net(x)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 3, (300,), generator=g)
    x = torch.randn(300, 6, generator=g)
    codes = torch.rand(3, 6, generator=g) + 5.0
    torch.manual_seed(1)
    model = Recorder(torch.nn.Linear(6, 3))
    train_with_codes(model, x, y, codes, 0.5, 2, seed=3)
    seen = model.seen
    assert seen, 'train_with_codes: not implemented yet (the model saw no training batch)'
    sizes = [len(b) for b in seen]
    assert sizes == [128, 128, 44] * 2, f'batch sizes {sizes}; expected [128, 128, 44] in each of the 2 epochs (300 samples)'
    is_code = [(b.unsqueeze(1) == codes.unsqueeze(0)).all(-1).any(-1) for b in seen]
    counts = [int(m.sum()) for m in is_code]
    assert all((0 < c < s for c, s in zip(counts, sizes))), f'codes per batch {counts} of {sizes}: at t_mix = 0.5 every sample gets its own draw, so each batch holds both codes and real samples'
    assert abs(sum(counts) - 300) < 60, f'{sum(counts)} of 600 samples were codes at t_mix = 0.5'
    gen = torch.Generator().manual_seed(3)
    idx = torch.randperm(300, generator=gen)[:128]
    swap = torch.rand(128, generator=gen) < 0.5
    first, real = (seen[0], ~is_code[0])
    assert torch.equal(first[real], x[idx][real]), 'the first batch is not x[torch.randperm(len(y), generator=gen)[:128]]: shuffle with the seeded generator at the start of each epoch'
    assert torch.equal(first[~real], codes[y[idx]][~real]), "a swapped sample must become its own class's code"
    assert torch.equal(~real, swap), "the first batch's swapped samples are not those of mix_batch(..., generator=gen) right after the shuffle (does your mix_batch pass question 2?)"

@test_case(points=None, hidden=False)
def test_q3_public_learns(train_with_codes):
    import torch
    g = torch.Generator().manual_seed(0)
    centers = 0.3 * torch.randn(4, 20, generator=g)
    y = torch.randint(0, 4, (800,), generator=g)
    x = centers[y] + 0.05 * torch.randn(800, 20, generator=g)
    codes = torch.rand(4, 20, generator=g) * 3 - 1.5
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 4))
    before = [p.detach().clone() for p in model.parameters()]
    out = train_with_codes(model, x, y, codes, 0.3, 15, seed=0)
    changed = any((not torch.equal(p, q) for p, q in zip(model.parameters(), before)))
    assert changed, 'train_with_codes: not implemented yet (the weights did not change)'
    assert out is model, 'return the model you trained'
    with torch.no_grad():
        own = (out(codes).argmax(1) == torch.arange(4)).float().mean().item()
        real = (out(x).argmax(1) == y).float().mean().item()
    assert own == 1.0, f'the trained network recognises {own:.0%} of its codes, expected all'
    assert real > 0.9, f'accuracy on the training data {real:.0%}'
    assert not out.training, 'return the model in evaluation mode'

