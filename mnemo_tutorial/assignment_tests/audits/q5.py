from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 6

@test_case(points=None, hidden=False)
def test_q5_public(relearn_steps):
    import copy
    import torch

    def reference(model, x, y, x_eval, y_eval, forget, lr, threshold, max_steps):
        work = copy.deepcopy(model)
        opt = torch.optim.SGD(work.parameters(), lr=lr)
        sel = torch.isin(y_eval, torch.tensor(forget))

        def acc():
            with torch.no_grad():
                return 100.0 * (work(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
        if acc() >= threshold:
            return 0
        for step in range(1, max_steps + 1):
            loss = torch.nn.functional.cross_entropy(work(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if acc() >= threshold:
                return step
        return max_steps
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    xe = torch.randn(200, 2, generator=g)
    ye = (xe[:, 0] > 0).long()
    m = torch.nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        m.bias.zero_()
    w0 = m.weight.detach().clone()
    got = relearn_steps(m, x, y, xe, ye, [1], lr=0.05, threshold=50.0, max_steps=100)
    assert got is not None, 'relearn_steps returned None: not implemented yet'
    assert torch.equal(m.weight, w0), 'fine-tune a copy; the input model must not change'
    ref = reference(m, x, y, xe, ye, [1], 0.05, 50.0, 100)
    assert 1 < ref < 100, 'the check itself is broken: its reference needs between 1 and 100 steps'
    assert got == ref, f'{got} steps, expected {ref}'
    xe4 = torch.tensor([[-1.0, 0.0], [-0.5, 0.3], [0.5, 0.0], [1.0, -0.3]])
    ye4 = torch.tensor([1, 1, 1, 1])
    at = relearn_steps(m, x, y, xe4, ye4, [1], lr=0.05, threshold=50.0, max_steps=100)
    assert at == 0, f'{at} steps, expected 0: the accuracy is exactly 50 % before any step, and reaching the threshold includes being equal to it'

