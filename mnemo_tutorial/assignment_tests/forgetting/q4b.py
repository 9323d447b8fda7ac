from otter.test_files import test_case

OK_FORMAT = False

name = "q4b"
points = 2

@test_case(points=None, hidden=False)
def test_q4b_public(forgetting_sign):
    assert forgetting_sign is not ... and forgetting_sign is not None, 'forgetting_sign is still ...: not implemented yet'
    ok = type(forgetting_sign) in (int, float) and forgetting_sign in (1, -1)
    assert ok, f'forgetting_sign must be the number +1 or -1; got {forgetting_sign!r}'

