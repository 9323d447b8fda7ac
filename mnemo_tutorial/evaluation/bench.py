"""Benchmark library: every registered unlearning method on the same trained model.

:func:`benchmark` runs the methods of :data:`mnemo_tutorial.methods.METHODS` (the one-shot
mnemonic-code step and the baselines, each with its reference) through
:func:`mnemo_tutorial.methods.run_method` and measures them: forgetting time, time relative
to the one-shot method, E_F, A_R and optionally the audits. :func:`format_table` renders the
result as text; :func:`fim_benchmark` times the vectorised diagonal Fisher
(:func:`mnemo_tutorial.core.fisher.oracle_fisher`: forward hooks for ``nn.Linear`` layers,
``torch.func.vmap`` per-sample gradients for the rest) against the batch-size-1 loop
(:func:`~mnemo_tutorial.core.fisher.fisher_loop`). The ``bench`` command line lives in
:mod:`mnemo_tutorial.cli`.

Timing: a method whose first run takes less than ``repeat_below`` seconds is run
``repeats`` times in total and its median time is reported (the first call of a process
pays one-off start-up costs); slower methods run once. The metrics come from the first run
(every method is deterministic for a fixed seed on CPU).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.core.fisher import fisher_loop, oracle_fisher
from mnemo_tutorial.core.forget import ForgetResult
from mnemo_tutorial.evaluation.audits import audit
from mnemo_tutorial.evaluation.metrics import SplitLogits, forget_metrics, split_logits
from mnemo_tutorial.methods import METHODS, UnlearnTask, parse_methods, run_method
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.profiles import (
    ForgetSettings,
    Profile,
)
from mnemo_tutorial.training.profiles import (
    forget_settings as registered_forget_settings,
)
from mnemo_tutorial.utils import module_device

__all__ = [
    "SECONDS_KINDS",
    "DEFAULT_FIM_CHUNK",
    "DEFAULT_FIM_SAMPLES",
    "DEFAULT_REPEAT_BELOW",
    "DEFAULT_REPEATS",
    "SUMMARY_KEYS",
    "benchmark",
    "fim_benchmark",
    "format_table",
    "jsonable",
    "summarize",
    "versus_retrain",
]

#: Defaults of :func:`benchmark` (the command line reads them from here).
DEFAULT_REPEATS = 5
DEFAULT_REPEAT_BELOW = 30.0
DEFAULT_FIM_SAMPLES = 1000
DEFAULT_FIM_CHUNK = 64


def fim_benchmark(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = DEFAULT_FIM_CHUNK
) -> dict[str, float | int]:
    """Time the vectorised diagonal Fisher (``oracle_fisher`` over chunks of ``chunk``
    samples) against ``fisher_loop`` (one backward pass per sample, summed over the same
    chunks to bound memory) on x (N, ...), y (N,), after a small untimed warm-up; the two
    Fishers are checked against each other. Returns ``samples``, ``chunk``,
    ``vectorised_seconds``, ``loop_seconds``, ``speedup`` (= loop / vectorised, a true
    speedup) and ``max_rel_diff`` (largest difference relative to each tensor's maximum)."""
    if isinstance(chunk, bool) or int(chunk) < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
    was_training = model.training
    model.eval()
    dev = module_device(model)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    try:
        oracle_fisher(model, x[:4], y[:4], batch_size=4)  # warm-up
        fisher_loop(model, x[:4].to(dev), y[:4].to(dev))
        sync()
        t0 = time.perf_counter()
        vec = oracle_fisher(model, x, y, batch_size=chunk)
        sync()
        t_vec = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = {k: torch.zeros_like(v) for k, v in vec.items()}
        for start in range(0, x.shape[0], chunk):
            sq = fisher_loop(
                model, x[start : start + chunk].to(dev), y[start : start + chunk].to(dev)
            )
            for k, v in sq.items():
                loop[k] += v.sum(0)
        loop = {k: v / max(1, x.shape[0]) for k, v in loop.items()}
        sync()
        t_loop = time.perf_counter() - t0
    finally:
        model.train(was_training)
        for p in model.parameters():
            p.grad = None
    rel = max(
        float((vec[k] - loop[k]).abs().max() / loop[k].abs().max().clamp_min(1e-30)) for k in vec
    )
    return {
        "samples": int(x.shape[0]),
        "chunk": int(chunk),
        "vectorised_seconds": t_vec,
        "loop_seconds": t_loop,
        "speedup": t_loop / t_vec,
        "max_rel_diff": rel,
    }


def jsonable(obj: Any) -> Any:
    """``obj`` with tensors as lists, tuples as lists and unknown objects as strings (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


#: What a row's ``seconds`` is: the measured wall clock of the method, or (a stored retrained
#: model was loaded) the training time recorded when that model was trained.
SECONDS_KINDS = ("measured", "recorded training time (stored model loaded)")


def _seconds(results: list[ForgetResult]) -> tuple[float, list[float], str]:
    """(seconds, all times, kind) of a method's runs. A run that loaded a stored model
    (``details["source"]`` "cache" or "pretrained") reports the recorded training time, never
    the load time."""
    details = results[0].report.details
    if details.get("source") in ("cache", "pretrained") and details.get("train_seconds"):
        recorded = float(details["train_seconds"])
        return recorded, [recorded], SECONDS_KINDS[1]
    times = [r.report.seconds for r in results]
    return statistics.median(times), times, SECONDS_KINDS[0]


def _row(
    name: str, results: list[ForgetResult], data: ImageData, classes: list[int], out: SplitLogits
) -> dict[str, Any]:
    """One benchmark row from the runs of method ``name`` (metrics from the first run, whose
    logits are ``out``)."""
    first, method = results[0], METHODS[name]
    seconds, times, kind = _seconds(results)
    m = forget_metrics(out.test.argmax(1), data.y_test, classes, data.num_classes)
    t = forget_metrics(out.train.argmax(1), data.y_train, classes, data.num_classes)
    report = jsonable(first.report.to_dict())
    return {
        "method": name,
        "status": report.get("status", "ok"),
        "ours": method.ours,
        "role": method.role,
        "reference": method.reference,
        "summary": method.summary,
        "seconds": seconds,
        "seconds_kind": kind,
        "seconds_all": times,
        "repeats": len(times),
        "relative_time": None,
        "E_F": m["E_F"],
        "A_R": m["A_R"],
        "accuracy": m["accuracy"],
        "per_class": m["per_class"],
        "train_forget_acc": 100.0 - t["E_F"],
        "train_retain_acc": t["A_R"],
        "gap_to_retrain": None,
        "tow": None,
        "settings": report.get("details", {}),
        "report": report,
    }


def versus_retrain(rows: dict[str, dict[str, Any]], reference: str = "retrain") -> None:
    """Add to every row its gaps to the ``reference`` row (the model retrained without the
    forgotten classes), in accuracy points: ``gap_to_retrain = {"forget": |train forget-class
    accuracy - reference's|, "retain": same on the retained training samples, "test": same on
    the whole test split}``, and the tug-of-war score ``tow = prod(1 - gap / 100)`` over the three
    (1 = indistinguishable from retraining on these measures; Zhao et al., "What makes
    unlearning hard and what to do about it", NeurIPS 2024). Without a reference row nothing
    changes."""
    ref = rows.get(reference)
    if ref is None:
        return
    for row in rows.values():
        gaps = {
            "forget": abs(row["train_forget_acc"] - ref["train_forget_acc"]),
            "retain": abs(row["train_retain_acc"] - ref["train_retain_acc"]),
            "test": abs(row["accuracy"] - ref["accuracy"]),
        }
        row["gap_to_retrain"] = gaps
        row["tow"] = math.prod(1.0 - g / 100.0 for g in gaps.values())


def _runs(
    name: str, model: torch.nn.Module, task: UnlearnTask, repeats: int, repeat_below: float
) -> list[ForgetResult]:
    """The first run of ``name`` (with the task's progress bars) and, if it was fast, the
    repeats."""
    first = run_method(name, model, task)
    runs = [first]
    # a method that stores or loads models (retrain: details["source"]) is never repeated: a
    # repeat would load what the first run stored and time the load
    stores = "source" in first.report.details
    if first.report.seconds < repeat_below and not stores:
        quiet = UnlearnTask(
            task.classes,
            task.codes,
            task.data,
            task.profile,
            task.forget_settings,
            task.seed,
            task.budget,
            progress=False,
        )
        runs += [run_method(name, model, quiet) for _ in range(repeats - 1)]
    return runs


def _settings(profile: Profile, given: ForgetSettings | None) -> ForgetSettings:
    """The one-shot settings: ``given``, else those registered with ``profile``."""
    return given if given is not None else registered_forget_settings(profile.dataset, profile.name)


def _original(data: ImageData, classes: list[int], out: SplitLogits) -> dict[str, Any]:
    """The original model's test metrics before any method runs (its logits: ``out``)."""
    orig = forget_metrics(out.test.argmax(1), data.y_test, classes, data.num_classes)
    return {k: orig[k] for k in ("E_F", "A_R", "accuracy", "per_class")}


def _audit_all(
    out: dict[str, Any],
    trained: Any,
    models: dict[str, tuple[torch.nn.Module, SplitLogits]],
    data: ImageData,
    classes: list[int],
    seed: int,
) -> None:
    """Audit the original (``models["original"]``) and every method's model, each with its
    logits and against the retrained model (the ``retrain`` row's) where there is one."""
    reference = models["retrain"][0] if "retrain" in models else None
    for name, (model, logits) in models.items():
        row = out["original"] if name == "original" else out["methods"][name]
        row["audits"] = audit(model, data, classes, seed=seed, reference=reference, logits=logits)


def _relative_times(rows: dict[str, dict[str, Any]]) -> None:
    """Set every row's ``relative_time``: its seconds / the mnemonic row's (None without it)."""
    base = rows.get("mnemonic", {}).get("seconds")
    for row in rows.values():
        row["relative_time"] = row["seconds"] / base if base else None


def benchmark(
    trained: Any,
    data: ImageData,
    classes: Sequence[int] | int,
    profile: Profile,
    forget_settings: ForgetSettings | None = None,
    seed: int = 0,
    methods: Sequence[str] | str | None = None,
    repeats: int = DEFAULT_REPEATS,
    repeat_below: float = DEFAULT_REPEAT_BELOW,
    audits: bool = False,
    progress: bool = False,
    on_result: Callable[[str, ForgetResult], None] | None = None,
    budget: str = "quick",
) -> dict[str, Any]:
    """Run ``methods`` (default: every registered method) on ``trained.model`` and measure them.

    ``trained``: a :class:`~mnemo_tutorial.training.loop.TrainResult` (``model``, ``codes``);
    ``forget_settings``: the one-shot method's settings (default: those registered for
    ``profile``); ``budget``: ``"quick"`` or ``"full"`` for every baseline. Returns
    ``{"forget", "seed", "budget", "profile", "original": {E_F, A_R, accuracy, per_class[, audits]},
    "methods": {name: row}}``; each row has the keys ``method, status, ours, role, reference,
    summary, seconds, seconds_kind, seconds_all, repeats, relative_time, E_F, A_R, accuracy,
    per_class,
    train_forget_acc, train_retain_acc, gap_to_retrain, tow, settings, report`` (and ``audits``).
    ``relative_time`` = seconds / the mnemonic row's seconds (None without it); ``seconds`` is
    the method's wall clock, or for a stored retrained model the recorded training time
    (``seconds_kind`` says which, :data:`SECONDS_KINDS`: a load time is never reported);
    ``audits=True`` audits the original and every model after all methods ran, each against
    the retrained model where ``retrain`` is among the methods (:func:`audit`);
    ``gap_to_retrain``/``tow`` see :func:`versus_retrain` (None without a retrain row).
    ``on_result(name, result)`` gets each method's first result (e.g. to keep models).
    """
    classes = check_forget_classes(classes, data.num_classes, name="classes")
    names = parse_methods(methods)
    if isinstance(repeats, bool) or int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    settings = _settings(profile, forget_settings)
    task = UnlearnTask(classes, trained.codes, data, profile, settings, seed, budget, progress)
    out: dict[str, Any] = {
        "forget": classes,
        "seed": seed,
        "budget": budget,
        "profile": profile.name,
    }
    models = {"original": (trained.model, split_logits(trained.model, data))}
    out["original"] = _original(data, classes, models["original"][1])
    rows: dict[str, dict[str, Any]] = {}
    for name in tqdm(names, desc="methods", disable=not progress):
        runs = _runs(name, trained.model, task, int(repeats), float(repeat_below))
        logits = split_logits(runs[0].model, data)
        rows[name] = _row(name, runs, data, classes, logits)
        if audits:
            models[name] = (runs[0].model, logits)
        if on_result is not None:
            on_result(name, runs[0])
    _relative_times(rows)
    versus_retrain(rows)
    out["methods"] = rows
    if audits:
        _audit_all(out, trained, models, data, classes, seed)
    return out


SUMMARY_KEYS = ("seconds", "relative_time", "E_F", "A_R", "accuracy", "tow")


def summarize(
    results: Sequence[dict[str, Any]], keys: Sequence[str] = SUMMARY_KEYS
) -> dict[str, dict[str, Any]]:
    """Mean and 95 % interval per method over several :func:`benchmark` results (e.g. seeds x
    classes): ``{method: {key: {"mean", "low", "high", "n"}, "failed": count}}``. The interval is
    Student's t for the mean (mean +- t_{0.975, n-1} * sd / sqrt(n)); with n = 1 low = high = mean.
    A key missing (None) in a run is left out of that key's values."""
    from mnemo_tutorial.evaluation.compare import interval

    out: dict[str, dict[str, Any]] = {}
    names = list(dict.fromkeys(name for r in results for name in r["methods"]))
    for name in names:
        rows = [r["methods"][name] for r in results if name in r["methods"]]
        entry: dict[str, Any] = {"failed": sum(row.get("status") == "failed" for row in rows)}
        for key in keys:
            values = [float(row[key]) for row in rows if row.get(key) is not None]
            if not values:
                entry[key] = None
                continue
            entry[key] = interval(values)
        out[name] = entry
    return out


def format_table(result: dict[str, Any]) -> str:
    """The benchmark as a text table: one row per method, the original model first; a failed
    method is marked ``(failed)``, a variant of ours ``*``, a control ``+`` and a recorded
    training time (a stored model loaded) ``r``. With audits: the loss-threshold MIA AUC, the
    entropy attack's member share, the probe at the last hidden layer, the relearn steps and
    the JS divergence to the retrained model."""
    audits = "audits" in result["original"]
    tow = any(r.get("tow") is not None for r in result["methods"].values())
    head = f"{'method':22s}{'seconds':>10s}{'x one-shot':>12s}{'E_F %':>8s}{'A_R %':>8s}" + (
        f"{'ToW':>7s}" if tow else ""
    )
    if audits:
        head += f"{'MIA AUC':>9s}{'MIA ent':>9s}{'probe %':>9s}{'relearn':>9s}{'JS':>7s}"
    lines = [head]

    def line(name: str, r: dict[str, Any], seconds: str, rel: str) -> str:
        s = f"{name:22s}{seconds:>10s}{rel:>12s}{r['E_F']:8.2f}{r['A_R']:8.2f}"
        if tow:
            s += f"{r['tow']:7.3f}" if r.get("tow") is not None else f"{'-':>7s}"
        if audits:
            a = r["audits"]
            steps = f"{a['relearn_steps']}" + ("" if a["relearned"] else "+")
            js = "-" if a["js_to_reference"] is None else f"{a['js_to_reference']:.3f}"
            s += f"{a['mia_auc']:9.3f}{a['mia_entropy']:9.3f}{a['probe_last']:9.1f}{steps:>9s}"
            s += f"{js:>7s}"
        return s

    lines.append(line("original", result["original"], "-", "-"))
    for name, r in result["methods"].items():
        mark = {"ours": "*", "control": "+"}.get(r.get("role", ""), "")
        label = name + mark + (" (failed)" if r.get("status") == "failed" else "")
        rel = "-" if r["relative_time"] is None else f"{r['relative_time']:,.1f}"
        secs = f"{r['seconds']:.3f}" + ("r" if r.get("seconds_kind") == SECONDS_KINDS[1] else "")
        lines.append(line(label, r, secs, rel))
    roles = {r.get("role") for r in result["methods"].values()}
    if "ours" in roles:
        lines.append("* a variant of ours, not the reference's form")
    if "control" in roles:
        lines.append("+ a control: the simplest edit that could produce the result")
    if any(r.get("seconds_kind") == SECONDS_KINDS[1] for r in result["methods"].values()):
        lines.append("r the recorded training time of a stored model (not its load time)")
    return "\n".join(lines)
