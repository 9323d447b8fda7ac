from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 8

@test_case(points=None, hidden=False)
def test_q5_public(choose_lambdas, model, codes, x_test, y_test):
    from mnemo_tutorial import Fixed, ForgetSettings, evaluate, forget
    c = 3
    l1, l2, s = choose_lambdas(model, codes, [c])
    assert s in (1, -1), 'sign must be +1 or -1'
    settings = ForgetSettings(selection=Fixed(float(l1), float(l2)), sign=int(s))
    new = forget(model, codes, [c], settings, on_failure='return').model
    m0 = evaluate(model, x_test, y_test, [c], 10)
    m1 = evaluate(new, x_test, y_test, [c], 10)
    assert m1['E_F'] >= 90.0, f"E_F {m1['E_F']:.1f} % on digit {c}: the digit is not forgotten"
    assert m1['A_R'] >= m0['A_R'] - 5.0, f"A_R {m1['A_R']:.1f} % against {m0['A_R']:.1f} % before: too much damage"

