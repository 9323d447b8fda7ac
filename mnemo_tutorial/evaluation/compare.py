"""The full comparison: every method and control, each class forgotten in turn, several
seeds, every audit; then which audits tell removal from suppression.

:func:`compare` runs :func:`~mnemo_tutorial.evaluation.bench.benchmark` (with audits) on
every (seed, class) cell, in worker processes when asked, and :func:`summarize_cells` gives
the mean and 95 % interval per method. :func:`separation` asks, per audit, whether it tells
the retrained model from the output-suppression control at all (paired over cells), and
where each method sits. The ``bench`` command runs it with ``--seeds`` / ``--each-class``.

Seeds: seed s trains the original model with seed s (codes, initial weights, data order);
every method of a cell runs with the same seed. The retrained model's distance to the
retrained model is 0 by construction, so its row carries the distance to the model
retrained with the next seed instead: two exact unlearnings of the same class, the floor
any method's distance should be read against.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import statistics
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

__all__ = [
    "AUDIT_KEYS",
    "REPEAT_BELOW",
    "SUMMARY_METRICS",
    "audit_value",
    "check_params",
    "compare",
    "format_summary",
    "interval",
    "separation",
    "summarize_cells",
]

#: The audits :func:`separation` examines: key in a row's ``audits`` -> what it measures.
AUDIT_KEYS: dict[str, str] = {
    "mia_auc": "membership inference, loss threshold (AUC)",
    "mia_entropy": "membership inference, SSD's entropy attack (share called members)",
    "probe_first": "linear probe after the first layer (forget-class recall %)",
    "probe_last": "linear probe after the last hidden layer (forget-class recall %)",
    "probe_output": "linear probe on the output layer's logits (forget-class recall %)",
    "relearn_steps": "fine-tuning steps until the class returns",
    "js_to_reference": "Jensen-Shannon divergence to the retrained model on the class",
}
#: Methods faster than this (seconds) are timed ``repeats`` times, the median reported; the
#: comparison's slower methods run once (their time is far above timer noise).
REPEAT_BELOW = 1.0
#: Row metrics summarised besides the audits.
SUMMARY_METRICS = ("E_F", "A_R", "tow", "seconds")


def interval(values: Sequence[float]) -> dict[str, float]:
    """Mean and Student-t 95 % interval of the mean: {"mean", "low", "high", "n"}."""
    from scipy.stats import t as student_t

    n = len(values)
    mean = statistics.fmean(values)
    half = (
        float(student_t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n)
        if n > 1
        else 0.0
    )
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def audit_value(audits: dict[str, Any], key: str) -> float | None:
    """Audit ``key`` of a row's ``audits``; ``probe_output`` is the probe on the last probed
    layer (the output layer) also where the row predates that key."""
    if key == "probe_output" and key not in audits and audits.get("probe"):
        return float(list(audits["probe"].values())[-1])
    value = audits.get(key)
    return None if value is None else float(value)


def _cell_values(cells: list[dict[str, Any]], name: str, key: str) -> list[float]:
    out = []
    for cell in cells:
        row = cell["original"] if name == "original" else cell["methods"].get(name)
        if row is None:
            continue
        value = row.get(key) if key in SUMMARY_METRICS else audit_value(row.get("audits", {}), key)
        if value is not None:
            out.append(float(value))
    return out


def summarize_cells(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method (and ``original``): mean and interval of :data:`SUMMARY_METRICS` and
    :data:`AUDIT_KEYS` over the cells, the mean relearning curve, the mean probe recall per
    layer, and how many cells failed their criterion."""
    names = ["original"] + list(dict.fromkeys(n for c in cells for n in c["methods"]))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        entry: dict[str, Any] = {}
        for key in (*SUMMARY_METRICS, *AUDIT_KEYS):
            values = _cell_values(cells, name, key)
            entry[key] = interval(values) if values else None
        rows = [c["original"] if name == "original" else c["methods"][name] for c in cells]
        audits = [r["audits"] for r in rows if "audits" in r]
        if audits:
            curves = torch.tensor([a["relearn_curve"] for a in audits], dtype=torch.float64)
            entry["relearn_curve"] = curves.mean(0).tolist()
            layers = list(audits[0]["probe"])
            entry["probe"] = {k: statistics.fmean(a["probe"][k] for a in audits) for k in layers}
        entry["failed"] = sum(r.get("status") == "failed" for r in rows)
        out[name] = entry
    return out


def _paired(cells: list[dict[str, Any]], a: str, b: str, key: str) -> dict[str, float] | None:
    """Interval of the per-cell difference a - b of audit ``key`` (cells where both have it)."""
    diffs = []
    for cell in cells:
        rows = {"original": cell["original"], **cell["methods"]}
        if a in rows and b in rows:
            va, vb = audit_value(rows[a]["audits"], key), audit_value(rows[b]["audits"], key)
            if va is not None and vb is not None:
                diffs.append(float(va) - float(vb))
    return interval(diffs) if len(diffs) > 1 else None


def _excludes_zero(iv: dict[str, float] | None) -> bool:
    return iv is not None and (iv["low"] > 0 or iv["high"] < 0)


def _placement(cells: list[dict[str, Any]], name: str, key: str) -> dict[str, Any]:
    to_suppress = _paired(cells, name, "suppress", key)
    to_retrain = _paired(cells, name, "retrain", key)
    off_s, off_r = _excludes_zero(to_suppress), _excludes_zero(to_retrain)
    place = {
        (True, False): "with retrain",
        (False, True): "with suppress",
        (True, True): "apart from both",
        (False, False): "not separated from either",
    }[(off_s, off_r)]
    return {"minus_suppress": to_suppress, "minus_retrain": to_retrain, "placement": place}


def separation(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per audit of :data:`AUDIT_KEYS`: does it separate ``retrain`` from ``suppress``
    (the 95 % interval of their paired per-cell difference excludes 0)? And, per method,
    where it sits: "with retrain" (differs from suppress, not from retrain), "with suppress",
    "apart from both" or "not separated from either". Only an audit that separates retrain
    from suppress can call a method's result removal; without both rows, an empty dict."""
    names = [n for n in dict.fromkeys(n for c in cells for n in c["methods"])]
    if not {"retrain", "suppress"} <= set(names):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, what in AUDIT_KEYS.items():
        diff = _paired(cells, "retrain", "suppress", key)
        entry: dict[str, Any] = {
            "measures": what,
            "retrain_minus_suppress": diff,
            "separates": _excludes_zero(diff),
        }
        if entry["separates"]:
            entry["methods"] = {
                n: _placement(cells, n, key)
                for n in ["original", *names]
                if n not in ("retrain", "suppress")
            }
        out[key] = entry
    return out


# --------------------------------------------------------------------------- running the cells


_LIMITS: list[Any] = []  # a worker's thread-pool limits, kept alive for its lifetime


def _worker_init(threads: int) -> None:
    """Limit a worker to ``threads`` threads in every pool it uses: torch's, and the BLAS and
    OpenMP pools of NumPy, SciPy and scikit-learn (the probes' and attacks' solvers), which
    otherwise start one thread per core each and, with several workers, oversubscribe the
    cores (2 workers on 2 cores: 4 runnable threads each)."""
    import sklearn.linear_model  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads))
    _LIMITS.append(threadpool_limits(limits=int(threads)))


def _load(spec: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    from mnemo_tutorial.training.checkpoints import train_or_load
    from mnemo_tutorial.training.data import load_dataset
    from mnemo_tutorial.training.profiles import get_settings

    settings = get_settings(spec["dataset"], spec["profile"])
    profile = settings.train
    if spec.get("epochs") is not None:
        profile = profile.replace(epochs=spec["epochs"])
    data = load_dataset(spec["dataset"])
    trained = train_or_load(profile, data, seed=spec["seed"], device=spec["device"])
    return settings, profile, data, trained


def _train_seed(spec: dict[str, Any]) -> dict[str, Any]:
    """Train (or load) the original model of one seed; returns where it came from."""
    _, _, _, trained = _load(spec)
    return {"seed": spec["seed"], "source": trained.source, "train_seconds": trained.train_seconds}


def _slim(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what every cell repeats (reference, summary, settings, the report)."""
    drop = ("reference", "summary", "settings", "report")
    return {k: v for k, v in row.items() if k not in drop}


def _run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """One (seed, class) cell: the benchmark with audits, rows slimmed."""
    from mnemo_tutorial.evaluation.bench import benchmark

    settings, profile, data, trained = _load(spec)
    forget = settings.forget
    if spec.get("params") is not None:
        forget = forget.replace(params=spec["params"])
    result = benchmark(
        trained,
        data,
        [spec["class"]],
        profile,
        forget,
        seed=spec["seed"],
        methods=spec["methods"],
        repeats=spec["repeats"],
        repeat_below=REPEAT_BELOW,
        audits=True,
        budget=spec["budget"],
    )
    result["methods"] = {k: _slim(v) for k, v in result["methods"].items()}
    result["class"] = spec["class"]
    return result


def _map(fn: Any, specs: list[dict[str, Any]], workers: int, threads: int, desc: str) -> list:
    """``fn`` over ``specs`` in ``workers`` spawned processes (in this one when 1), in order."""
    bar = tqdm(total=len(specs), desc=desc, disable=not specs[0].get("progress", False))
    if workers == 1:
        out = []
        for spec in specs:
            out.append(fn(spec))
            bar.update()
        bar.close()
        return out
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(fn, spec) for spec in specs]
        for _ in cf.as_completed(futures):
            bar.update()
        bar.close()
        return [f.result() for f in futures]


def _check(seeds: Sequence[int], classes: Sequence[int], workers: int, num_classes: int) -> None:
    from mnemo_tutorial.checks import check_forget_classes

    if not seeds or any(isinstance(s, bool) or int(s) != s or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers; got {list(seeds)!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat; got {list(seeds)!r}")
    for c in classes:  # each class is forgotten alone
        check_forget_classes([c], num_classes, name="classes")
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct and at least one; got {list(classes)!r}")
    if isinstance(workers, bool) or int(workers) < 1:
        raise ValueError(f"workers must be a positive integer; got {workers!r}")


def check_params(dataset: str, profile: str, params: Any) -> Any:
    """``params`` (None, ``"all"``, ``"head"``, ``"head-bias"`` or tensor names) checked
    against the model that ``profile`` builds for ``dataset``, before any cell runs; returns
    it."""
    if params is None:
        return None
    from mnemo_tutorial.core.step import resolve_params
    from mnemo_tutorial.training.checkpoints import initial_model
    from mnemo_tutorial.training.data import DATASET_CLASSES
    from mnemo_tutorial.training.profiles import get_profile

    built = get_profile(dataset, profile)
    resolve_params(initial_model(built, len(DATASET_CLASSES[dataset]), 0), params)
    return params


def _retrain_floor(cells: list[dict[str, Any]], base: dict[str, Any], seeds: list[int]) -> None:
    """Give each cell's retrain row the JS divergence between the models retrained (same
    class) with its seed and with the next seed (both from the data root's cache)."""
    from mnemo_tutorial.evaluation.removal import divergence_to
    from mnemo_tutorial.methods.retrain import retrain

    if len(seeds) < 2:
        return
    loaded = {s: _load({**base, "seed": s}) for s in seeds}
    for cell in cells:
        row = cell["methods"].get("retrain")
        if row is None or "audits" not in row:
            continue
        s, c = cell["seed"], cell["class"]
        other = seeds[(seeds.index(s) + 1) % len(seeds)]
        models = []
        for seed in (s, other):
            _, profile, data, trained = loaded[seed]
            models.append(retrain(trained.model, data, [c], profile, seed).model)
        row["audits"]["js_to_reference"] = divergence_to(models[0], models[1], data, [c], seed=s)
        row["audits"]["js_reference"] = f"the model retrained with seed {other}"


def compare(
    dataset: str,
    profile: str,
    seeds: Sequence[int],
    classes: Sequence[int],
    *,
    methods: Sequence[str] | None = None,
    epochs: int | None = None,
    budget: str = "quick",
    repeats: int = 3,
    workers: int = 1,
    threads: int = 1,
    device: str = "cpu",
    progress: bool = False,
    params: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every (seed, class) cell of ``methods`` (default all) with every audit (``params``: the
    tensors the one-shot rows' step moves, default the profile's setting); ``workers``
    processes of ``threads`` torch threads each (the originals are trained first, one seed
    per process). Returns ``{"cells": [...], "summary": summarize_cells, "separation":
    separation, "seeds", "classes", "workers", "threads"}``; each cell is a benchmark
    result with ``seed`` and ``class``."""
    from mnemo_tutorial.methods import parse_methods
    from mnemo_tutorial.training.data import DATASET_CLASSES

    seeds, classes = [int(s) for s in seeds], [int(c) for c in classes]
    _check(seeds, classes, workers, len(DATASET_CLASSES[dataset]))
    base: dict[str, Any] = {"dataset": dataset, "profile": profile, "epochs": epochs}
    base.update(device=device, methods=parse_methods(methods), budget=budget)
    base.update(
        repeats=int(repeats), progress=progress, params=check_params(dataset, profile, params)
    )
    train_specs = [{**base, "seed": s} for s in seeds]
    originals = _map(_train_seed, train_specs, min(workers, len(seeds)), threads, "originals")
    specs = [{**base, "seed": s, "class": c} for s in seeds for c in classes]
    cells = _map(_run_cell, specs, workers, threads, "cells")
    _retrain_floor(cells, base, seeds)
    return {
        "seeds": seeds,
        "classes": classes,
        "workers": int(workers),
        "threads": int(threads),
        "originals": originals,
        "cells": cells,
        "summary": summarize_cells(cells),
        "separation": separation(cells),
    }


_COLUMNS = (
    ("E_F", "E_F %", ".1f"),
    ("A_R", "A_R %", ".2f"),
    ("tow", "ToW", ".3f"),
    ("mia_auc", "MIA AUC", ".3f"),
    ("mia_entropy", "MIA ent", ".3f"),
    ("probe_last", "probe %", ".1f"),
    ("probe_output", "probe out", ".1f"),
    ("relearn_steps", "relearn", ".1f"),
    ("js_to_reference", "JS", ".3f"),
)


def format_summary(report: dict[str, Any]) -> str:
    """The comparison as text: per method the mean of every column (95 % interval half-width
    in the JSON), then per audit whether it separates retrain from suppress and where the
    methods sit."""
    n = len(report["cells"])
    lines = [f"{n} cells ({len(report['seeds'])} seeds x {len(report['classes'])} classes)"]
    lines.append(f"{'method':16s}" + "".join(f"{h:>9s}" for _, h, _ in _COLUMNS))
    for name, entry in report["summary"].items():
        cells = []
        for key, _, spec in _COLUMNS:
            iv = entry.get(key)
            cells.append(f"{format(iv['mean'], spec):>9s}" if iv else f"{'-':>9s}")
        failed = f"  ({entry['failed']} failed)" if entry.get("failed") else ""
        lines.append(f"{name:16s}" + "".join(cells) + failed)
    lines.append("retrain's JS: to the model retrained with the next seed (the floor)")
    for key, entry in report["separation"].items():
        verdict = "separates" if entry["separates"] else "does not separate"
        lines.append(f"{key}: {verdict} retrain from suppress")
        for name, place in entry.get("methods", {}).items():
            lines.append(f"    {name}: {place['placement']}")
    return "\n".join(lines)
