"""Forgetting rehearsed at training time (core/rehearsal.py): the record's numbers equal an
independent evaluation, the default params follow it, a class whose rehearsal missed is refused
before any step (and only for the settings rehearsed), the record travels with the codes, and
the registry's rows report the refusal."""
import copy
import dataclasses
import warnings

import pytest
import torch
from torch import nn

from mnemo_tutorial.core import forget as forget_module
from mnemo_tutorial.core import rehearsal as rehearsal_module
from mnemo_tutorial.core.alignment import CodeAlignment, ForgetRefused, measure_alignment
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import forget
from mnemo_tutorial.core.rehearsal import (
    CANDIDATES,
    DEFAULT_CANDIDATES,
    TARGET_DROP,
    TARGET_EF,
    Rehearsal,
    RehearsalMissed,
    rehearsal_refusal,
    rehearse,
)
from mnemo_tutorial.core.step import resolve_params
from mnemo_tutorial.core.settings import DataFree, ForgetSettings
from mnemo_tutorial.evaluation.metrics import forget_metrics, predict
from mnemo_tutorial.methods import UnlearnTask, run_method
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.loop import train_model
from mnemo_tutorial.training.profiles import TrainConfig
from test_alignment import C, D, blobs

@pytest.fixture(scope="module")
def trained():
    x, y, centres = blobs(n=60)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))
    config = TrainConfig(epochs=3, optimizer="adam", lr=1e-2, t_mix=0.2)
    result = train_model(model, x, y, MnemonicCodes(centres), config, progress=False)
    return result, x, y


def test_the_training_loop_rehearses_and_the_record_matches_an_independent_evaluation(trained):
    result, x, y = trained
    record = result.codes.alignment.rehearsal
    assert isinstance(record, Rehearsal) and tuple(record.cells) == CANDIDATES
    assert CANDIDATES == ("head", "all", "head-bias")
    assert record.samples == len(y)  # 60 a class, fewer than the sample's 200
    for params in CANDIDATES:
        for c in range(C):
            res = forget(result.model, result.codes.codes, [c], ForgetSettings(params=params),
                         on_failure="return", require_alignment=False, verify=(x, y))
            before = forget_metrics(predict(result.model, x), y, [c], C)
            after = forget_metrics(predict(res.model, x), y, [c], C)
            cell = record.cells[params][c]
            assert cell["E_F"] == pytest.approx(after["E_F"])
            assert cell["A_R_drop"] == pytest.approx(before["A_R"] - after["A_R"])
            assert cell["met"] == (res.report.status == "ok" and after["E_F"] >= TARGET_EF
                                   and before["A_R"] - after["A_R"] <= TARGET_DROP)
            assert cell["status"] == res.report.status
    counts = {p: record.count(p) for p in record.cells}
    best = max(counts.values())
    best = max(counts[p] for p in DEFAULT_CANDIDATES)
    # the method's own steps only, ties in order
    assert record.params == next(p for p in DEFAULT_CANDIDATES if counts[p] == best)
    assert "default params=" in result.codes.alignment.describe()
    as_bias = dataclasses.replace(record, params="head-bias")
    assert "an edit of the outputs alone" in as_bias.describe()
    assert "an edit of the outputs" not in dataclasses.replace(record, params="head").describe()
    # no rehearsal when asked not to
    model = copy.deepcopy(result.model)
    plain = train_model(model, x, y, MnemonicCodes(blobs(n=60)[2]), TrainConfig(epochs=1, t_mix=0.2),
                        progress=False, rehearse=False)
    assert plain.codes.alignment is not None and plain.codes.alignment.rehearsal is None


def test_auto_params_follow_the_rehearsal_and_default_to_every_tensor_without_one(trained):
    result, _, _ = trained
    record = result.codes.alignment.rehearsal
    for params in CANDIDATES:
        codes = result.codes.with_alignment(
            result.codes.alignment.with_rehearsal(dataclasses.replace(record, params=params))
        )
        met = [c for c in range(C) if record.met(params, c)]
        if not met:
            continue
        res = forget(result.model, codes, [met[0]], on_failure="return")
        assert res.report.details["params_from"] == "rehearsal"
        assert res.report.details["settings"]["params"] == params
        explicit = forget(result.model, codes, [met[0]], ForgetSettings(params=params), on_failure="return")
        assert explicit.report.details["params_from"] == "given"
        assert all(torch.equal(a, b) for a, b in zip(res.model.parameters(), explicit.model.parameters()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bare = forget(result.model, result.codes.codes, [0], on_failure="return")
    assert bare.report.details["params_from"] == "default" and bare.report.details["settings"]["params"] == "all"


def _with_missed(result, params, missed):
    """The trained codes with a rehearsal record that says ``missed`` missed under ``params``."""
    record = result.codes.alignment.rehearsal
    cells = {k: tuple(dict(cell) for cell in v) for k, v in record.cells.items()}
    for c in missed:
        cells[params][c].update(met=False, E_F=42.0, A_R_drop=0.5)
    fake = dataclasses.replace(record, params=params, cells=cells)
    return result.codes.with_alignment(result.codes.alignment.with_rehearsal(fake))


def test_a_class_whose_rehearsal_missed_is_refused_before_any_step(trained, monkeypatch):
    result, x, y = trained
    codes = _with_missed(result, "head", [1])
    other = "all"

    def no_step(*args, **kwargs):
        raise AssertionError("a step was computed for a refused class")

    with monkeypatch.context() as m:
        m.setattr(forget_module, "class_fisher_ratio", no_step)
        with pytest.raises(RehearsalMissed, match="forgetting class 1 with params='head' missed") as err:
            forget(result.model, codes, [0, 1])
    message = str(err.value)
    assert "E_F 42.0 %" in message and "require_alignment=False" in message and "finetune" in message
    assert err.value.classes == [1] and isinstance(err.value, ForgetRefused)
    assert isinstance(err.value, ValueError)
    # not refused: stepping anyway, the other params (rehearsed and met), settings not rehearsed
    forget(result.model, codes, [1], require_alignment=False, on_failure="return")
    if codes.alignment.rehearsal.met(other, 1):
        forget(result.model, codes, [1], ForgetSettings(params=other), on_failure="return")
    wider = ForgetSettings(params="head", selection=DataFree(margin=4.0))
    assert forget(result.model, codes, [1], wider, on_failure="return").report.status != "refused"


def test_the_record_travels_with_the_codes_and_bad_input_is_refused(trained):
    result, x, y = trained
    codes = result.codes
    again = MnemonicCodes.from_state_dict(codes.state_dict())
    assert again.alignment == codes.alignment and again.alignment.rehearsal == codes.alignment.rehearsal
    assert CodeAlignment.from_dict(codes.alignment.to_dict()) == codes.alignment
    with pytest.raises(ValueError, match="rehearsal must be a Rehearsal of 4 classes"):
        codes.alignment.with_rehearsal("rehearsed")
    model, code_tensor = result.model, codes.codes
    with pytest.raises(ValueError, match="candidates must be a non-empty subset"):
        rehearse(model, code_tensor, x, y, candidates=("body",))
    with pytest.raises(ValueError, match="samples_per_class must be a positive integer"):
        rehearse(model, code_tensor, x, y, samples_per_class=0)
    with pytest.raises(ValueError, match="x and y must hold as many samples"):
        rehearse(model, code_tensor, x, y[:-1])
    with pytest.raises(ValueError, match="params must be 'auto', 'all', 'head', 'head-bias'"):
        ForgetSettings(params="body")


def test_the_registry_reports_a_rehearsal_refusal_and_leaves_the_model(trained):
    result, x, y = trained
    codes = _with_missed(result, "head", [2])
    data = ImageData("blobs", x, y, x, y, list("abcd"))
    before = copy.deepcopy(result.model.state_dict())
    task = UnlearnTask([2], codes, data, None)
    res = run_method("mnemonic", result.model, task)
    assert res.report.status == "refused" and res.report.details["reason"] == "rehearsal"
    assert res.report.details["refused_classes"] == [2]
    assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in before.items())
    record = measure_alignment(result.model, codes.codes, x, y)
    assert record.rehearsal is None  # measuring alignment alone does not rehearse


def test_for_rehearsed_settings_the_rehearsal_decides_not_the_cosine(trained):
    result, x, y = trained
    low = dataclasses.replace(result.codes.alignment, cosine=(0.1,) + result.codes.alignment.cosine[1:])
    record = low.rehearsal
    codes = result.codes.with_alignment(low)
    params = next(p for p in CANDIDATES if record.met(p, 0))
    # rehearsed and met: the low cosine does not refuse
    res = forget(result.model, codes, [0], ForgetSettings(params=params), on_failure="return")
    assert res.report.status != "refused"
    # settings the rehearsal did not run: the cosine rule refuses
    with pytest.raises(ForgetRefused, match="does not sit with its class"):
        forget(result.model, codes, [0], ForgetSettings(params=params, selection=DataFree(margin=4.0)))


def test_a_rehearsal_can_show_progress_and_gives_the_same_record(trained, capsys):
    result, x, y = trained
    quiet = rehearse(result.model, result.codes.codes, x, y)
    shown = rehearse(result.model, result.codes.codes, x, y, progress=True)
    assert shown == quiet
    assert "rehearse params=head" in capsys.readouterr().err


def test_head_bias_moves_the_output_bias_alone_and_lowers_the_logit_on_every_input(trained):
    """"head-bias": the step on the output layer's bias only. Its change of a class's logit is
    the same on every input (a constant), whatever the features."""
    result, x, y = trained
    model = result.model
    assert resolve_params(model, "head-bias") == ["3.bias"]
    res = forget(model, result.codes, [2], ForgetSettings(params="head-bias"), on_failure="return",
                 require_alignment=False)
    assert set(res.report.steps) == {"3.bias"}
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, res.model.state_dict()[k])]
    assert changed == ["3.bias"]
    with torch.no_grad():
        shift = res.model(x) - model(x)
    torch.testing.assert_close(shift, shift[:1].expand_as(shift))  # the same for every input
    assert float(shift[0, 2]) < 0 and float(shift[0, 2]) == float(shift[0].min())


def test_a_model_whose_output_layer_has_no_bias_rehearses_the_other_candidates(trained):
    result, x, y = trained
    model = copy.deepcopy(result.model)
    model[3] = nn.Linear(16, C, bias=False)
    model[3].weight.data.copy_(result.model[3].weight.data)
    with pytest.raises(ValueError, match="params='head-bias' needs an output layer with a bias"):
        resolve_params(model, "head-bias")
    record = rehearse(model, result.codes.codes, x, y)
    assert tuple(record.cells) == ("head", "all")
    with pytest.raises(ValueError, match="params='head-bias' needs an output layer with a bias"):
        rehearse(model, result.codes.codes, x, y, candidates=("head-bias",))


def test_the_bias_edit_is_never_a_default_and_a_refusal_says_what_it_is(trained, monkeypatch):
    """Where only the bias edit forgets, the default stays one of the method's steps: the
    classes it misses are refused, and the refusal names params='head-bias' as the suppress
    control, to be asked for by name."""
    result, x, y = trained
    assert DEFAULT_CANDIDATES == ("head", "all")

    def rigged(model, codes, xs, ys, params, progress):
        met = params == "head-bias"
        cell = {"E_F": 100.0 if met else 50.0, "A_R_drop": 0.0, "status": "ok", "met": met}
        return tuple(dict(cell) for _ in range(C)), {"rigged": True}

    monkeypatch.setattr(rehearsal_module, "_rehearse_one", rigged)
    record = rehearse(result.model, result.codes.codes, x, y)
    assert record.count("head-bias") == C and record.count("head") == 0
    assert record.params == "head"  # not the bias edit, which met every class
    assert rehearse(result.model, result.codes.codes, x, y, candidates=("head-bias",)).params == (
        "head-bias"
    )  # asked for alone, it is what was asked for
    err = rehearsal_refusal(record, "head", {"rigged": True}, [1])
    assert isinstance(err, RehearsalMissed)
    assert "params='head-bias' met the target" in str(err) and "suppress control" in str(err)
    assert rehearsal_refusal(record, "head-bias", {"rigged": True}, [1]) is None
    partial = dataclasses.replace(
        record, cells={**record.cells, "head-bias": ({**record.cells["head-bias"][0], "met": False},)
                       + record.cells["head-bias"][1:]}
    )
    assert "suppress control" not in str(rehearsal_refusal(partial, "head", {"rigged": True}, [0]))
