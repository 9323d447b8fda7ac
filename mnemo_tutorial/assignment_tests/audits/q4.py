from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 4

@test_case(points=None, hidden=False)
def test_q4_public(probe_accuracy):
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(4)
    mu = rng.normal(size=(3, 30))
    ytr = rng.integers(0, 3, 40)
    yte = rng.integers(0, 3, 300)
    ftr = 0.35 * mu[ytr] + rng.normal(size=(40, 30))
    fte = 0.35 * mu[yte] + rng.normal(size=(300, 30))
    got = probe_accuracy(ftr, ytr, fte, yte, [2])
    assert got is not None, 'probe_accuracy returned None: not implemented yet'
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(ftr, ytr)
    sel = yte == 2
    ref = 100.0 * (clf.predict(fte[sel]) == yte[sel]).mean()
    assert abs(float(got) - ref) < 0.5, f"{float(got):.1f} %, expected {ref:.1f} %: a probe fitted on the training features of all classes, scored on the forgotten class's test samples, in percent"

