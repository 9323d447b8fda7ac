"""Whether codes sit with their classes (core/alignment.py): measured on models whose head
inputs are known, recorded by the training loop and with checkpoints, read by forget (refusal
before any step, warning without a record), and reported by the registry's methods."""
import copy
import warnings

import pytest
import torch
from torch import nn

from mnemo_tutorial.core import forget as forget_module
from mnemo_tutorial.core.alignment import MIN_COSINE, CodeAlignment, CodesNotAligned, measure_alignment
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import CodesUnchecked, forget
from mnemo_tutorial.methods import UnlearnTask, run_method
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.loop import record_alignment, train_model
from mnemo_tutorial.training.profiles import TrainConfig

C, D = 4, 8


def identity_head(weight=None):
    """Flatten -> Linear(D, C): the head input is the (flattened) input itself."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(D, C))
    if weight is not None:
        with torch.no_grad():
            model[1].weight.copy_(weight)
            model[1].bias.zero_()
    return model


def blobs(n=40, seed=0):
    """Class c: the unit vector e_{2c} (plus e_{2c+1} / 2) with small positive noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.zeros(C, D)
    for c in range(C):
        centres[c, 2 * c], centres[c, 2 * c + 1] = 1.0, 0.5
    y = torch.arange(C).repeat_interleave(n)
    return centres[y] + 0.05 * torch.rand(len(y), D, generator=g), y, centres


def test_codes_at_their_class_means_sit_with_their_classes_and_permuted_codes_do_not():
    x, y, centres = blobs()
    model = identity_head()
    good = measure_alignment(model, centres, x, y)
    assert good.layer == "1" and good.nearest == tuple(range(C))
    assert all(v > 0.99 for v in good.cosine) and all(v < 0.1 for v in good.best_other)
    assert good.misaligned(range(C)) == []
    shifted = centres.roll(1, dims=0)  # code c lies where class c - 1 is
    bad = measure_alignment(model, shifted, x, y)
    assert bad.nearest == tuple((c - 1) % C for c in range(C)) and max(bad.cosine) < MIN_COSINE
    assert bad.misaligned([0, 2]) == [0, 2]
    assert "0 of 4 codes sit with their classes" in bad.describe()
    assert CodeAlignment.from_dict(bad.to_dict()) == bad


def test_a_high_cosine_sits_with_its_class_even_when_another_mean_is_nearer():
    # all-positive features: every mean is at a high cosine to every code
    record = CodeAlignment("fc", cosine=(0.8, 0.6), best_other=(0.85, 0.3), nearest=(1, 1),
                           samples_per_class=10)
    assert record.misaligned([0, 1]) == []
    low = CodeAlignment("fc", cosine=(0.4, 0.9), best_other=(0.6, 0.1), nearest=(1, 1),
                        samples_per_class=10)
    assert low.misaligned([0, 1]) == [0]
    # where every cosine is low, being nearest one's own class's mean is not enough
    faint = CodeAlignment("fc", cosine=(0.3, 0.2), best_other=(0.1, 0.1), nearest=(0, 1),
                          samples_per_class=10)
    assert faint.misaligned([0, 1]) == [0, 1]


def test_a_class_without_samples_is_unmeasured_not_misaligned():
    x, y, centres = blobs()
    keep = y != 2
    record = measure_alignment(identity_head(), centres, x[keep], y[keep])
    assert record.cosine[2] != record.cosine[2]  # NaN
    assert record.nearest[0] == 0 and record.best_other[0] < 0.1  # the empty class is nobody's
    assert record.misaligned(range(C)) == []
    with pytest.raises(ValueError, match="samples_per_class"):
        measure_alignment(identity_head(), centres, x, y, samples_per_class=0)


def _trained_pair():
    """A linear model whose logit c is 10 <centre_c, x>: it classifies the data right; codes
    at the class means sit with their classes, permuted ones at another class's place."""
    x, y, centres = blobs()
    model = identity_head(weight=centres * 10)  # logit c = 10 <centre_c, x>
    return model, x, y, centres


def test_forget_refuses_codes_that_do_not_sit_with_their_classes_before_any_step(monkeypatch):
    model, x, y, centres = _trained_pair()
    codes = MnemonicCodes(centres.roll(1, dims=0))
    codes = codes.with_alignment(measure_alignment(model, codes.codes, x, y))

    def no_step(*args, **kwargs):
        raise AssertionError("a step was computed for a refused class")

    monkeypatch.setattr(forget_module, "class_fisher_ratio", no_step)
    with pytest.raises(CodesNotAligned, match="code of class 1 does not sit") as err:
        forget(model, codes, [1])
    message = str(err.value)
    assert "nearest: class 0's" in message and "require_alignment=False" in message and "verify=" in message
    assert err.value.classes == [1] and isinstance(err.value, ValueError)


def test_require_alignment_false_steps_anyway_and_records_travel_with_the_codes():
    model, x, y, centres = _trained_pair()
    record = measure_alignment(model, centres.roll(1, dims=0), x, y)
    codes = MnemonicCodes(centres.roll(1, dims=0)).with_alignment(record)
    res = forget(model, codes, [1], require_alignment=False, on_failure="return")
    assert res.report.status in ("ok", "failed") and res.report.steps
    assert codes.to("cpu").alignment is record
    assert MnemonicCodes.from_state_dict(codes.state_dict()).alignment == record
    with pytest.raises(ValueError, match="CodeAlignment of 4 classes"):
        codes.with_alignment("aligned")


def test_codes_without_a_record_warn_unless_verified():
    model, x, y, centres = _trained_pair()
    with pytest.warns(CodesUnchecked, match="no alignment record"):
        forget(model, MnemonicCodes(centres), [1], on_failure="return")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodesUnchecked)
        forget(model, MnemonicCodes(centres), [1], verify=(x, y), on_failure="return")
        aligned = MnemonicCodes(centres).with_alignment(measure_alignment(model, centres, x, y))
        forget(model, aligned, [1], on_failure="return")


def test_the_training_loop_records_the_alignment_and_the_registry_reports_a_refusal():
    x, y, centres = blobs(n=60)
    codes = MnemonicCodes(centres.roll(1, dims=0))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))
    result = train_model(model, x, y, codes, TrainConfig(epochs=3, optimizer="adam", lr=1e-2, t_mix=0.2),
                         progress=False)
    assert result.codes.alignment is not None and result.codes.alignment.layer == "3"
    assert codes.alignment is None  # the caller's codes are left as they were
    # a record that says class 2's code sits elsewhere: the method's row is a refusal
    record = CodeAlignment("3", cosine=(0.9, 0.9, 0.1, 0.9), best_other=(0.1, 0.1, 0.8, 0.1),
                           nearest=(0, 1, 0, 3), samples_per_class=60)
    task = UnlearnTask([2], codes.with_alignment(record), ImageData("blobs", x, y, x, y, list("abcd")), None)
    before = copy.deepcopy(result.model.state_dict())
    for name in ("mnemonic", "head-only"):
        res = run_method(name, result.model, task)
        assert res.report.status == "refused" and res.report.details["refused_classes"] == [2], name
        assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in before.items())
    unmeasured = record_alignment(copy.copy(result), x[:5], y[:5])  # too few samples: NaN, kept
    assert unmeasured.codes.alignment is not None
