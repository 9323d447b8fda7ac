"""The method registry (methods.py) and the benchmark library (bench.py) on tiny problems."""
import json
import re

import pytest
import torch
from test_baselines import PROFILE, blobs, fit, make_report_for, same_weights

from mnemo_tutorial.core import forget as forget_mod
from mnemo_tutorial.core import step as step_mod
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import ForgetFailed, ForgetResult
from mnemo_tutorial.core.settings import DataFree, Fixed
from mnemo_tutorial.evaluation import bench
from mnemo_tutorial.methods import (
    METHODS,
    Method,
    UnlearnTask,
    get_method,
    parse_methods,
    registry,
    run_method,
)
from mnemo_tutorial.methods.finetune import finetune
from mnemo_tutorial.methods.fisher_forgetting import fisher_forgetting, fisher_noise
from mnemo_tutorial.methods.neggrad import neggrad
from mnemo_tutorial.methods.ssd import ssd
from mnemo_tutorial.methods.unsir import unsir
from mnemo_tutorial.training.profiles import ForgetSettings

BUILTIN = ("mnemonic", "retrain", "finetune", "neggrad", "ssd", "fisher", "unsir")


@pytest.fixture(scope="module")
def setup():
    data = blobs()
    model = fit(data)
    codes = MnemonicCodes.random(3, data.input_shape, seed=0)
    return data, model, codes


def task_for(setup, **changes):
    data, _, codes = setup
    kw = {"classes": [0], "codes": codes, "data": data, "profile": PROFILE, "forget_settings": ForgetSettings()}
    kw.update(changes)
    return UnlearnTask(**kw)


class FakeTrained:
    def __init__(self, model, codes):
        self.model, self.codes = model, codes


# --------------------------------------------------------------------------- registry


def test_registry_names_references_and_summaries():
    assert set(BUILTIN) <= set(METHODS)
    url = re.compile(r"https?://\S+")
    for name, m in METHODS.items():
        assert m.name == name and callable(m.run)
        assert "\n" not in m.summary and len(m.summary) <= 120, name
        if m.ours:
            assert m.reference.startswith("ours"), name  # a variant says so and names what it varies
        else:
            assert url.search(m.reference) and re.search(r"\b20\d\d\b", m.reference), name
    # every variant of ours is a named row beside its reference form
    assert {n for n, m in METHODS.items() if m.ours} == {"ssd-shuffled", "fisher-noise"}
    assert "mnemonic-paper" in METHODS  # the authors' procedure beside our defaults


def test_get_method_and_register_method(monkeypatch):
    assert get_method("ssd") is METHODS["ssd"]
    with pytest.raises(ValueError, match=r"method must be one of mnemonic, mnemonic-paper, retrain, .*; got 'magic'") as err:
        get_method("magic")
    assert "\n" not in str(err.value)
    monkeypatch.setattr(registry, "METHODS", dict(METHODS))
    new = Method("noop", lambda model, task: None, (), "ours, a test", "does nothing", ours=True)
    assert registry.register_method(new) is new and registry.METHODS["noop"] is new
    with pytest.raises(ValueError, match="already registered"):
        registry.register_method(new)
    registry.register_method(new, replace=True)
    with pytest.raises(ValueError, match="needs"):
        Method("bad", lambda m, t: None, ("gpu",), "ref", "summary")


def test_parse_methods():
    assert parse_methods("all") == list(METHODS) == parse_methods(None)
    assert parse_methods("ssd, mnemonic") == ["ssd", "mnemonic"]
    assert parse_methods(["fisher", "unsir"]) == ["fisher", "unsir"]
    for bad in ("magic", "ssd,ssd", "", "ssd,"):
        with pytest.raises(ValueError, match="methods"):
            parse_methods(bad)


def test_task_is_validated_before_any_work(setup):
    with pytest.raises(ValueError, match="budget"):
        task_for(setup, budget="huge")
    with pytest.raises(ValueError, match="forget"):
        task_for(setup, classes=[5])
    assert task_for(setup, classes=2).classes == (2,)


def test_run_method_checks_what_the_method_needs(setup):
    _, model, _ = setup
    with pytest.raises(ValueError, match="task.codes"):
        run_method("mnemonic", model, task_for(setup, codes=None))
    with pytest.raises(ValueError, match="task.profile"):
        run_method("retrain", model, task_for(setup, profile=None))


# what each registered baseline must run: its function and the settings its name fixes
BASELINE_FUNCTIONS = {f.__name__: f for f in (finetune, neggrad, ssd, fisher_forgetting,
                                               fisher_noise, unsir)}
REGISTERED_AS = {"finetune": ("finetune", {}), "neggrad": ("neggrad", {}), "ssd": ("ssd", {}),
                 "ssd-shuffled": ("ssd", {"order": "shuffled"}),
                 "fisher": ("fisher_forgetting", {}), "fisher-noise": ("fisher_noise", {}),
                 "unsir": ("unsir", {})}


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(REGISTERED_AS))
def test_every_baseline_runs_through_the_registry(setup, name):
    import time

    from mnemo_tutorial.evaluation.metrics import evaluate

    data, model, _ = setup
    before, acc0 = _state(model), evaluate(model, data.x_test, data.y_test, [1], 3)
    # budget "full" and seed 3 are not the defaults: an adapter that dropped them is caught
    t0 = time.perf_counter()
    out = run_method(name, model, task_for(setup, classes=[1], seed=3, budget="full"))
    wall = time.perf_counter() - t0
    assert isinstance(out, ForgetResult) and out.model is not model
    after = _state(model)  # the input model is left as it was
    assert all(torch.equal(after[k], v) for k, v in before.items()) and not model.training
    assert all(p.grad is None for p in model.parameters())
    # the registry ran that baseline on the task's classes with its seed and budget
    fn, fixed = REGISTERED_AS[name]
    direct = BASELINE_FUNCTIONS[fn](model, data, [1], 3, budget="full", **fixed)
    assert same_weights(out.model, direct.model), "not the baseline's own result for the task"
    rep = out.report  # the report describes that run
    assert rep.method == name and rep.forget == [1] and rep.status == "ok"
    changed = sum(int((a != b).sum()) for a, b in zip(out.model.parameters(), model.parameters()))
    if name.startswith("ssd"):  # the reference alpha dampens nothing here; shuffled does
        assert changed == rep.details["dampened_params"], (changed, rep.details)
    else:
        assert changed > 0, "the method changed nothing"
    assert rep.details["budget"] == "full" and 0 < rep.seconds <= wall
    # on this easy problem no baseline costs the remaining classes more than 5 points or makes
    # the model better at the forgotten class than it was
    got = evaluate(out.model, data.x_test, data.y_test, [1], 3)
    assert got["A_R"] >= acc0["A_R"] - 5.0 and got["E_F"] >= acc0["E_F"] - 1.0, (acc0, got)


def test_ssd_shuffled_differs_from_the_reference_row(setup):
    _, model, _ = setup
    ref = run_method("ssd", model, task_for(setup))
    ours = run_method("ssd-shuffled", model, task_for(setup))
    assert ref.report.details["order"] == "sorted" and ours.report.details["order"] == "shuffled"
    assert ref.report.details["variant"] == "reference" and ours.report.details["variant"] == "ours"


def test_mnemonic_adapter_passes_the_forget_settings(setup, monkeypatch):
    _, model, codes = setup
    seen = {}

    def fake_forget(m, c, classes, settings=None, **kwargs):
        seen.update(kwargs, classes=classes, codes=c, settings=settings)
        return ForgetResult(m, make_report_for("mnemonic"))

    monkeypatch.setattr(registry, "forget", fake_forget)
    settings = ForgetSettings(paper_lambdas=(1e-4, 3.0), params=("fc2.weight",),
                              selection=DataFree(margin=2.0))
    run_method("mnemonic", model, task_for(setup, forget_settings=settings))
    assert seen["classes"] == [0] and seen["codes"] is codes
    assert seen["settings"] is settings


def failing_forget(monkeypatch, model):
    """Make forget raise ForgetFailed carrying a failed result; returns that result."""
    failed = ForgetResult(model, make_report_for("mnemonic", status="failed"))

    def fail(*args, **kwargs):
        raise ForgetFailed("criterion not met", failed)

    monkeypatch.setattr(registry, "forget", fail)
    return failed


def test_mnemonic_failure_is_returned_not_raised(setup, monkeypatch):
    _, model, _ = setup
    failed = failing_forget(monkeypatch, model)
    out = run_method("mnemonic", model, task_for(setup))
    assert out is failed and out.report.status == "failed"


# --------------------------------------------------------------------------- bench


def timed(name, seconds, calls):
    """A registered stand-in method whose report says it took ``seconds``; counts its calls."""

    def run(model, task):
        calls[name] = calls.get(name, 0) + 1
        return ForgetResult(model, make_report_for(name, seconds=seconds))

    return Method(name, run, (), f"ours, a stand-in ({name})", "a fixed time", ours=True)


def test_benchmark_rows_relative_time_and_repeats(setup, monkeypatch):
    data, model, codes = setup
    calls = {}
    fakes = {"mnemonic": timed("mnemonic", 0.5, calls), "fast": timed("fast", 1.0, calls),
             "slow": timed("slow", 50.0, calls)}
    monkeypatch.setattr(registry, "METHODS", fakes)
    monkeypatch.setattr(bench, "METHODS", fakes)
    kept = {}
    out = bench.benchmark(FakeTrained(model, codes), data, [0], PROFILE, ForgetSettings(), seed=0,
                          methods="mnemonic,fast,slow", repeats=3, repeat_below=10.0,
                          on_result=lambda name, res: kept.setdefault(name, res))
    rows = out["methods"]
    assert list(rows) == ["mnemonic", "fast", "slow"] and set(kept) == set(rows)
    assert calls == {"mnemonic": 3, "fast": 3, "slow": 1}  # only fast methods are repeated
    assert [rows[n]["relative_time"] for n in rows] == [1.0, 2.0, 100.0]
    assert rows["slow"]["repeats"] == 1 and rows["fast"]["seconds_all"] == [1.0, 1.0, 1.0]
    for r in rows.values():
        assert "speedup" not in r and r["status"] == "ok" and r["ours"]
        assert r["E_F"] == out["original"]["E_F"]  # the stand-ins return the model unchanged
    assert out["forget"] == [0] and out["budget"] == "quick"
    json.dumps(out)


def test_benchmark_keeps_going_when_the_mnemonic_step_fails(setup, monkeypatch):
    data, model, codes = setup
    failing_forget(monkeypatch, model)
    out = bench.benchmark(FakeTrained(model, codes), data, [0], PROFILE, ForgetSettings(),
                          methods="mnemonic,ssd", repeats=1)
    assert out["methods"]["mnemonic"]["status"] == "failed" and out["methods"]["ssd"]["status"] == "ok"
    table = bench.format_table(out)
    assert "mnemonic (failed)" in table and "ssd" in table.splitlines()[3]


def test_benchmark_real_methods_with_audits_and_table(setup):
    data, model, codes = setup
    out = bench.benchmark(FakeTrained(model, codes), data, [0], PROFILE, ForgetSettings(), seed=0,
                          methods="ssd,ssd-shuffled", repeats=1, audits=True)
    rows = out["methods"]
    assert rows["ssd"]["relative_time"] is None  # no mnemonic row to compare with
    assert rows["ssd"]["settings"]["order"] == "sorted" and not rows["ssd"]["ours"]
    assert {"mia_auc", "mia_entropy", "probe_last", "relearn_steps"} <= set(rows["ssd"]["audits"])
    assert rows["ssd"]["audits"]["js_to_reference"] is None  # no retrained model to compare with
    assert rows["ssd"]["tow"] is None and rows["ssd"]["train_retain_acc"] > 95.0
    table = bench.format_table(out).splitlines()
    assert table[0].split()[:3] == ["method", "seconds", "x"] and "MIA" in table[0]
    assert table[1].startswith("original") and table[3].startswith("ssd-shuffled*")
    assert table[-1].startswith("* a variant of ours")


def test_benchmark_rejects_bad_input_before_running(setup):
    data, model, codes = setup
    trained = FakeTrained(model, codes)
    with pytest.raises(ValueError, match="methods"):
        bench.benchmark(trained, data, [0], PROFILE, ForgetSettings(), methods="magic")
    with pytest.raises(ValueError, match="repeats"):
        bench.benchmark(trained, data, [0], PROFILE, ForgetSettings(), repeats=0)
    with pytest.raises(ValueError, match="classes"):
        bench.benchmark(trained, data, [7], PROFILE, ForgetSettings())
    with pytest.raises(ValueError, match="budget"):
        bench.benchmark(trained, data, [0], PROFILE, ForgetSettings(), budget="most")


def test_fim_benchmark_agrees_with_loop(setup):
    data, model, _ = setup
    fim = bench.fim_benchmark(model, data.x_train[:50], data.y_train[:50], chunk=16)
    assert fim["samples"] == 50 and fim["max_rel_diff"] < 1e-4
    assert fim["speedup"] == fim["loop_seconds"] / fim["vectorised_seconds"]
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="chunk"):
        bench.fim_benchmark(model, data.x_train[:5], data.y_train[:5], chunk=0)


def test_mnemonic_paper_row_is_the_authors_fixed_unnormalised_step(setup, monkeypatch):
    """One Fisher computation (counted), the paper's lambdas, no normalisation, and the authors'
    sign rule: + only when its code score is strictly higher."""
    _, model, codes = setup
    calls = []
    real = step_mod.class_fisher_ratio

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "class_fisher_ratio", counted)
    settings = ForgetSettings(paper_lambdas=(1e-3, 10.0))
    out = run_method("mnemonic-paper", model, task_for(setup, forget_settings=settings))
    assert len(calls) == 1 and calls[0]["normalize"] is False
    rep = out.report
    assert rep.method == "mnemonic-paper" and (rep.lambda1, rep.lambda2) == (1e-3, 10.0)
    scores = rep.details["code_scores"]
    assert rep.sign == (1 if scores[1] > scores[-1] else -1)
    same = forget_mod.forget(model, codes, [0], settings.replace(
        selection=Fixed(), normalize_fisher=False, sign=rep.sign), on_failure="return")
    assert same_weights(out.model, same.model)  # the same step forget takes with these settings
    assert rep.status == same.report.status


def test_mnemonic_paper_runs_on_a_real_model(setup):
    _, model, codes = setup
    out = run_method("mnemonic-paper", model, task_for(setup))
    ours = forget_mod.forget(model, codes, [0], ForgetSettings(selection=Fixed()), on_failure="return")
    assert out.report.selection == "fixed" and out.report.status in ("ok", "failed")
    assert not same_weights(out.model, ours.model)  # the per-code normalisation changes the step


def test_versus_retrain_gaps_and_tug_of_war_known_answer():
    rows = {
        "retrain": {"train_forget_acc": 0.0, "train_retain_acc": 98.0, "accuracy": 88.0},
        "x": {"train_forget_acc": 10.0, "train_retain_acc": 95.0, "accuracy": 90.0},
    }
    bench.versus_retrain(rows)
    assert rows["x"]["gap_to_retrain"] == {"forget": 10.0, "retain": 3.0, "test": 2.0}
    assert rows["x"]["tow"] == pytest.approx(0.9 * 0.97 * 0.98)
    assert rows["retrain"]["tow"] == 1.0
    alone = {"x": {"train_forget_acc": 1.0, "train_retain_acc": 1.0, "accuracy": 1.0}}
    bench.versus_retrain(alone)
    assert "tow" not in alone["x"]


def test_summarize_mean_and_t_interval_known_answer():
    runs = [{"methods": {"a": {"E_F": v, "status": "ok", "tow": None}}} for v in (90.0, 100.0, 95.0)]
    runs[1]["methods"]["a"]["status"] = "failed"
    runs.append({"methods": {"b": {"E_F": 7.0, "status": "ok", "tow": 0.5}}})
    out = bench.summarize(runs, keys=("E_F", "tow"))
    # mean 95, sd 5, n 3: half width t_{0.975,2} * 5 / sqrt(3) = 4.302653 * 2.886751 = 12.4207
    assert out["a"]["E_F"]["mean"] == 95.0 and out["a"]["E_F"]["n"] == 3
    assert out["a"]["E_F"]["high"] - 95.0 == pytest.approx(12.4207, abs=1e-3)
    assert out["a"]["tow"] is None and out["a"]["failed"] == 1
    assert out["b"]["E_F"] == {"mean": 7.0, "low": 7.0, "high": 7.0, "n": 1}


def test_no_reported_time_is_a_load_time(setup, tmp_path):
    """retrain's seconds: the training time when it trains, the recorded training time (marked)
    when a stored retrained model is loaded; never the load time."""
    data, model, codes = setup
    trained = FakeTrained(model, codes)
    kw = {"methods": "retrain", "repeats": 3}
    first = bench.benchmark(trained, data, [0], PROFILE, ForgetSettings(), **kw)["methods"]["retrain"]
    assert first["settings"]["source"] == "trained" and first["seconds_kind"] == "measured"
    assert first["seconds"] >= first["settings"]["train_seconds"]  # the call includes the training
    again = bench.benchmark(trained, data, [0], PROFILE, ForgetSettings(), **kw)["methods"]["retrain"]
    assert again["settings"]["source"] == "cache"  # loaded from the data root's cache
    assert again["report"]["seconds"] < again["settings"]["train_seconds"]  # the load was fast
    assert again["seconds"] == again["settings"]["train_seconds"] == first["settings"]["train_seconds"]
    assert again["seconds_kind"] == bench.SECONDS_KINDS[1] and again["repeats"] == 1
    table = bench.format_table({"original": {"E_F": 0.0, "A_R": 0.0}, "methods": {"retrain": again}})
    assert f"{again['seconds']:.3f}r" in table and table.endswith("(not its load time)")


def test_mnemonic_paper_computes_the_fisher_once(setup, monkeypatch):
    data, model, codes = setup
    calls = []
    real = registry.class_fisher_ratio

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "class_fisher_ratio", counting)
    out = run_method("mnemonic-paper", model, task_for(setup))
    assert len(calls) == 1 and set(out.report.details["code_scores"]) == {1, -1}  # both signs
