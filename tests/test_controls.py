"""The controls (methods/controls.py): output suppression and the head-only step."""
import math

import pytest
import torch
from test_baselines import PROFILE, blobs, fit, snapshot

from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.settings import DEFAULT_MARGIN, DataFree, ForgetSettings
from mnemo_tutorial.methods import METHODS, Method, UnlearnTask, run_method
from mnemo_tutorial.methods.controls import head_only, suppress, suppression_shift


@pytest.fixture(scope="module")
def setup():
    data = blobs(classes=4)
    model = fit(data)
    return data, model, MnemonicCodes.random(4, data.input_shape, seed=0)


def logits(model, x):
    with torch.no_grad():
        return model.eval()(x).double()


def test_suppression_shift_is_the_smallest_that_meets_the_margin_brute_force():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        z = torch.randn(5, 5, generator=g, dtype=torch.float64) * 4
        classes = sorted(torch.randperm(5, generator=g)[:2].tolist())
        d = suppression_shift(z, classes, margin=2.0)
        remain = [r for r in range(5) if r not in classes]
        for i, c in enumerate(classes):
            depth = lambda shift: min(  # noqa: E731  (best remaining - shifted own logit, worst code)
                z[k, remain].max() - (z[k, c] - shift) for k in classes
            )
            assert d[i] >= 0
            if d[i] > 0:
                assert math.isclose(depth(d[i]), 2.0, abs_tol=1e-9)  # exactly the margin
                assert depth(d[i] - 1e-6) < 2.0  # any smaller shift misses it
            else:
                assert depth(0.0) >= 2.0


def test_suppress_edits_only_the_forgotten_bias_and_meets_its_criterion(setup):
    data, model, codes = setup
    before = snapshot(model)
    result = suppress(model, codes, [1], margin=5.0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    changed = {k for k, v in result.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"fc2.bias"}
    diff = before["fc2.bias"] - result.model.state_dict()["fc2.bias"]
    assert diff[1] > 0 and torch.count_nonzero(diff) == 1
    z = logits(result.model, codes.codes)
    z0 = logits(model, codes.codes)
    keep = [0, 2, 3]
    torch.testing.assert_close(z[:, keep], z0[:, keep])  # remaining logits unchanged
    assert z[1, keep].max() - z[1, 1] >= 5.0 - 1e-5
    assert result.report.status == "ok" and result.report.details["criterion_met"]
    assert result.report.method == "suppress" and result.report.details["tensor"] == "fc2.bias"


class NegatedOutput(torch.nn.Module):
    """A model whose output is minus its last Linear's output: lowering that layer's bias
    raises the logit, so the closed form cannot meet the criterion."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return -self.inner(x)


def test_suppress_reports_failure_where_the_output_is_not_the_head(setup):
    data, model, codes = setup
    result = suppress(NegatedOutput(model), codes, [1])
    assert result.report.status == "failed" and not result.report.details["criterion_met"]


def test_suppress_rejects_bad_input(setup):
    data, model, codes = setup
    with pytest.raises(ValueError, match="margin must be a positive number"):
        suppress(model, codes, [1], margin=0)
    with pytest.raises(ValueError, match="margin must be finite"):
        suppress(model, codes, [1], margin=float("inf"))
    with pytest.raises(ValueError, match="forget must be class indices"):
        suppress(model, codes, [9])
    with pytest.raises(ValueError, match=r"codes must hold one code per class \(4\); got 3"):
        suppress(model, codes.codes[:3], [1])
    no_bias = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4, bias=False))
    with pytest.raises(ValueError, match="suppress needs an output layer with a bias"):
        suppress(no_bias, codes, [1])


def test_head_only_moves_the_output_layer_only(setup):
    data, model, codes = setup
    before = snapshot(model)
    result = head_only(model, codes, [2], ForgetSettings(selection=DataFree(margin=2.0)))
    changed = {k for k, v in result.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= {"fc2.weight", "fc2.bias"}
    assert result.report.method == "head-only"
    assert result.report.details["settings"]["params"] == ["fc2.weight", "fc2.bias"] or (
        result.report.details["settings"]["params"] == "head"
    )


def test_controls_are_registered_as_controls(setup):
    data, model, codes = setup
    for name in ("suppress", "head-only"):
        m = METHODS[name]
        assert m.control and not m.ours and m.role == "control" and m.needs == ("codes",)
        assert m.reference.startswith("control")
    assert METHODS["ssd"].role == "reference" and METHODS["ssd-shuffled"].role == "ours"
    with pytest.raises(ValueError, match="either a variant of ours or a control"):
        Method("x", lambda m, t: None, (), "ref", "sum", ours=True, control=True)
    task = UnlearnTask([1], codes, data, PROFILE, ForgetSettings(selection=DataFree(margin=3.0)))
    out = run_method("suppress", model, task)
    assert out.report.details["margin"] == 3.0
    default = run_method("suppress", model, UnlearnTask([1], codes, data, PROFILE))
    assert default.report.details["margin"] == DEFAULT_MARGIN
    with pytest.raises(ValueError, match="task.codes must be given"):
        run_method("head-only", model, UnlearnTask([1], None, data, PROFILE))
