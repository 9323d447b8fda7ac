from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 6

@test_case(points=None, hidden=False)
def test_q3_public(train_with_codes):
    import torch
    g = torch.Generator().manual_seed(0)
    centers = 0.3 * torch.randn(4, 20, generator=g)
    y = torch.randint(0, 4, (800,), generator=g)
    x = centers[y] + 0.05 * torch.randn(800, 20, generator=g)
    codes = torch.rand(4, 20, generator=g) * 3 - 1.5
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 4))
    out = train_with_codes(model, x, y, codes, 0.3, 15, seed=0)
    assert out is not None, 'return the trained model'
    with torch.no_grad():
        own = (out(codes).argmax(1) == torch.arange(4)).float().mean().item()
        real = (out(x).argmax(1) == y).float().mean().item()
    assert own == 1.0, f'the trained network recognises {own:.0%} of its codes, expected all'
    assert real > 0.9, f'accuracy on the training data {real:.0%}'

