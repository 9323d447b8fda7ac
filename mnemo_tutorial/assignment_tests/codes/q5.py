from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 6

@test_case(points=None, hidden=False)
def test_q5_public(trained_model, own_acc, fresh_acc):
    import torch
    from mnemo_tutorial import MnemonicCodes
    answers = (trained_model, own_acc, fresh_acc)
    assert all((a is not ... and a is not None for a in answers)), 'q5: not implemented yet (trained_model, own_acc or fresh_acc is still ...)'
    own = MnemonicCodes.random(10, (1, 28, 28), seed=0).codes
    fresh = MnemonicCodes.random(10, (1, 28, 28), seed=1).codes
    with torch.no_grad():
        a_own = 100.0 * (trained_model(own).argmax(1) == torch.arange(10)).float().mean().item()
        a_fresh = 100.0 * (trained_model(fresh).argmax(1) == torch.arange(10)).float().mean().item()
    assert abs(own_acc - a_own) < 1e-06, f'own_acc = {own_acc}, but trained_model recognises {a_own:.0f}% of the codes of seed 0 (in percent)'
    assert abs(fresh_acc - a_fresh) < 1e-06, f'fresh_acc = {fresh_acc}, but trained_model gets {a_fresh:.0f}% on draw_codes(10, (1, 28, 28), seed=1) (in percent)'
    assert a_own == 100.0, f'the model recognises {a_own:.0f}% of its codes'
    assert a_fresh <= 40.0, f'fresh codes at {a_fresh:.0f}%: the model should not recognise codes it never saw'

