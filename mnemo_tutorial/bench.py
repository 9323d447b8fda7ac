"""Benchmark: every unlearning method on the same trained model, in one process.

``python -m mnemo_tutorial bench --dataset mnist --profile quick`` trains (or loads) the
model, runs the one-shot mnemonic-code method and every baseline of
:mod:`mnemo_tutorial.baselines` on it, prints a table (forgetting time, time relative to
the one-shot method, E_F, A_R) and writes a JSON report. It also times the vectorised
diagonal Fisher (:func:`mnemo_tutorial.fisher.oracle_fisher`, i.e.
:func:`~mnemo_tutorial.fisher.per_sample_sq_grads` over chunks) against the
batch-size-1 loop (:func:`~mnemo_tutorial.fisher.fisher_loop`) on the same samples.

Timing: a method whose first run takes less than ``repeat_below`` seconds is run
``repeats`` times in total and its median time is reported (the first call of a process
pays one-off start-up costs); slower methods run once. The metrics come from the first run
(every method is deterministic for a fixed seed on CPU).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from .baselines import BASELINES
from .data import ImageData, data_root, load_dataset
from .fisher import fisher_loop, oracle_fisher
from .metrics import evaluate
from .profiles import Profile, default_profile_name, get_profile
from .train import TrainResult, train_or_load
from .unlearn import ForgetResult, check_forget_classes, forget
from .utils import atomic_write_text

METHODS: tuple[str, ...] = ("mnemonic", *BASELINES)


def run_method(
    name: str, trained: TrainResult, data: ImageData, classes: list[int], profile: Profile, seed: int = 0,
    progress: bool = False,
) -> ForgetResult:
    """Run method ``name`` (one of :data:`METHODS`) on ``trained.model`` with its defaults.

    ``mnemonic`` is :func:`mnemo_tutorial.unlearn.forget` with the codes stored with the model,
    the data-free lambda choice and the profile's ``paper_lambdas`` / ``extra["forget_kwargs"]``.
    """
    if name == "mnemonic":
        kwargs = dict(profile.extra.get("forget_kwargs", {}))
        kwargs.setdefault("paper_lambdas", tuple(profile.paper_lambdas))
        return forget(trained.model, trained.codes, classes, **kwargs)
    if name not in BASELINES:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {name!r}")
    kwargs: dict[str, Any] = {}
    if name in ("retrain", "finetune", "unsir"):
        kwargs["progress"] = progress
    if name == "retrain":
        kwargs["codes"] = trained.codes
    return BASELINES[name](trained.model, data, classes, profile=profile, seed=seed, **kwargs)


def parse_methods(text: str | Sequence[str] | None) -> list[str]:
    """``"all"`` / None -> every method; ``"mnemonic,ssd"`` -> that list (validated, in order)."""
    if text is None:
        return list(METHODS)
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p) for p in text]
    if parts == ["all"]:
        return list(METHODS)
    bad = [p for p in parts if p not in METHODS]
    if bad or not parts:
        raise ValueError(f"methods must be 'all' or a comma list of {', '.join(METHODS)}; got {bad[0] if bad else text!r}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"methods must not repeat a method; got {text!r}")
    return parts


def fim_benchmark(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 64
) -> dict[str, float | int]:
    """Time the vectorised diagonal Fisher (``oracle_fisher``: ``per_sample_sq_grads`` over
    chunks of ``chunk`` samples) against ``fisher_loop`` (one backward pass per sample,
    summed over the same chunks to bound memory) on x (N, ...), y (N,). Both run in this
    process on the model's device after a small untimed warm-up; the two Fishers are checked
    to agree. Returns seconds of each, ``speedup`` = loop / vectorised and the largest
    relative difference."""
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    try:
        oracle_fisher(model, x[:4], y[:4], batch_size=4)  # warm-up (torch.func set-up)
        fisher_loop(model, x[:4].to(dev), y[:4].to(dev))
        sync()
        t0 = time.perf_counter()
        vec = oracle_fisher(model, x, y, batch_size=chunk)
        sync()
        t_vec = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = {k: torch.zeros_like(v) for k, v in vec.items()}
        for start in range(0, x.shape[0], chunk):
            sq = fisher_loop(model, x[start : start + chunk].to(dev), y[start : start + chunk].to(dev))
            for k, v in sq.items():
                loop[k] += v.sum(0)
            del sq
        loop = {k: v / max(1, x.shape[0]) for k, v in loop.items()}
        sync()
        t_loop = time.perf_counter() - t0
    finally:
        model.train(was_training)
        for p in model.parameters():
            p.grad = None
    rel = max(float((vec[k] - loop[k]).abs().max() / loop[k].abs().max().clamp_min(1e-30)) for k in vec)
    return {
        "samples": int(x.shape[0]), "chunk": int(chunk), "vectorised_seconds": t_vec,
        "loop_seconds": t_loop, "speedup": t_loop / t_vec, "max_rel_diff": rel,
    }


def benchmark(
    trained: TrainResult,
    data: ImageData,
    forget_classes: Sequence[int] | int,
    profile: Profile,
    seed: int = 0,
    methods: Sequence[str] | str | None = None,
    repeats: int = 5,
    repeat_below: float = 30.0,
    audits: bool = False,
    progress: bool = True,
    on_result: Callable[[str, ForgetResult], None] | None = None,
) -> dict[str, Any]:
    """Run ``methods`` (default: all of :data:`METHODS`) on ``trained.model`` and measure them.

    Returns ``{"original": {E_F, A_R, accuracy[, audits]}, "methods": {name: {seconds,
    seconds_all, repeats, E_F, A_R, accuracy, per_class, speedup, details[, audits]}}}``
    with ``seconds`` the median over the runs (see the module docstring) and ``speedup`` =
    seconds / the mnemonic method's seconds (None without it). With ``audits`` the three
    audits of :mod:`mnemo_tutorial.audits` are added for every model (and the original).
    ``on_result(name, result)`` is called with the first run's result of each method (e.g.
    to keep the models).
    """
    from .audits import audit

    classes = check_forget_classes(forget_classes, data.num_classes)
    names = parse_methods(methods)
    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    nc = data.num_classes
    orig = evaluate(trained.model, data.x_test, data.y_test, classes, nc)
    out: dict[str, Any] = {"original": {"E_F": orig["E_F"], "A_R": orig["A_R"], "accuracy": orig["accuracy"],
                                        "per_class": orig["per_class"]}}
    if audits:
        out["original"]["audits"] = audit(trained.model, data, classes, seed=seed)
    rows: dict[str, dict[str, Any]] = {}
    bar = tqdm(names, desc="methods", disable=not progress)
    for name in bar:
        bar.set_postfix(method=name)
        first = run_method(name, trained, data, classes, profile, seed, progress=progress)
        times = [first.report.seconds]
        if first.report.seconds < repeat_below:
            for _ in range(int(repeats) - 1):
                times.append(run_method(name, trained, data, classes, profile, seed).report.seconds)
        m = evaluate(first.model, data.x_test, data.y_test, classes, nc)
        rows[name] = {
            "seconds": statistics.median(times), "seconds_all": times, "repeats": len(times),
            "E_F": m["E_F"], "A_R": m["A_R"], "accuracy": m["accuracy"], "per_class": m["per_class"],
            "details": _jsonable(first.report.to_dict()),
        }
        if audits:
            rows[name]["audits"] = audit(first.model, data, classes, seed=seed)
        if on_result is not None:
            on_result(name, first)
    base = rows.get("mnemonic", {}).get("seconds")
    for row in rows.values():
        row["speedup"] = row["seconds"] / base if base else None
    out["methods"] = rows
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def format_table(result: dict[str, Any]) -> str:
    """The benchmark as a text table (one row per method, the original model first)."""
    audits = "audits" in result["original"]
    head = f"{'method':10s}{'seconds':>10s}{'x one-shot':>12s}{'E_F %':>8s}{'A_R %':>8s}"
    if audits:
        head += f"{'MIA AUC':>9s}{'probe %':>9s}{'relearn':>9s}"
    lines = [head]

    def row(name: str, r: dict[str, Any], seconds: str, speed: str) -> str:
        s = f"{name:10s}{seconds:>10s}{speed:>12s}{r['E_F']:8.2f}{r['A_R']:8.2f}"
        if audits:
            a = r["audits"]
            steps = f"{a['relearn_steps']}" + ("" if a["relearned"] else "+")
            s += f"{a['mia_auc']:9.3f}{a['probe_forget_acc']:9.1f}{steps:>9s}"
        return s

    lines.append(row("original", result["original"], "-", "-"))
    for name, r in result["methods"].items():
        speed = "-" if r["speedup"] is None else f"{r['speedup']:,.1f}"
        lines.append(row(name, r, f"{r['seconds']:.3f}", speed))
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench`` beyond the common ones (dataset, profile, seed, epochs, report...)."""
    parser.add_argument("--methods", default="all",
                        help=f"comma list of methods to run (default all: {','.join(METHODS)})")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each fast method; the median time is reported (default 5)")
    parser.add_argument("--repeat-below", type=float, default=30.0,
                        help="repeat only methods whose first run takes less than this many seconds (default 30)")
    parser.add_argument("--fim-samples", type=int, default=1000,
                        help="training samples for the vectorised-vs-loop Fisher timing; 0 skips it (default 1000)")
    parser.add_argument("--fim-chunk", type=int, default=64,
                        help="samples per vectorised chunk in the Fisher timing (default 64)")
    parser.add_argument("--audits", action="store_true",
                        help="also run the membership-inference, linear-probe and relearn-time audits")


def _default_report_path(data_name: str, profile: str, seed: int, classes: list[int]) -> Path:
    tag = "-".join(str(c) for c in classes)
    return data_root() / "reports" / f"bench-{data_name}-{profile}-seed{seed}-forget{tag}.json"


def main(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args`` (see :func:`add_arguments`); 0 on success."""
    progress = not getattr(args, "no_progress", False)
    profile = get_profile(args.dataset, getattr(args, "profile", None) or default_profile_name())
    if getattr(args, "epochs", None) is not None:
        profile = profile.replace(epochs=int(args.epochs))
    try:
        methods = parse_methods(getattr(args, "methods", "all"))
    except ValueError as exc:
        raise ValueError(f"argument --methods: {exc}") from None
    repeats = int(getattr(args, "repeats", 5))
    fim_samples = int(getattr(args, "fim_samples", 1000))
    fim_chunk = int(getattr(args, "fim_chunk", 64))
    if repeats < 1:
        raise ValueError(f"--repeats must be a positive integer; got {repeats}")
    if fim_samples < 0 or fim_chunk < 1:
        raise ValueError(f"--fim-samples must be >= 0 and --fim-chunk >= 1; got {fim_samples}, {fim_chunk}")
    data = load_dataset(args.dataset)
    try:
        classes = check_forget_classes(getattr(args, "forget", None) or [0], data.num_classes)
    except ValueError as exc:
        raise ValueError(f"argument --forget: {str(exc).removeprefix('forget ')}") from None
    seed = int(getattr(args, "seed", 0))
    trained = train_or_load(profile, data, seed=seed, device=getattr(args, "device", None), progress=progress)
    result = benchmark(
        trained, data, classes, profile, seed=seed, methods=methods, repeats=repeats,
        repeat_below=float(getattr(args, "repeat_below", 30.0)), audits=bool(getattr(args, "audits", False)),
        progress=progress,
    )
    report: dict[str, Any] = {
        "dataset": data.name, "profile": profile.name, "epochs": profile.epochs, "device": trained.device,
        "torch_threads": torch.get_num_threads(), "seed": seed, "forget": classes,
        "train_seconds": trained.train_seconds, "train_cached": trained.from_cache,
        **result,
    }
    fim = None
    if fim_samples > 0:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(data.y_train.numel(), generator=gen)[:fim_samples]
        fim = fim_benchmark(trained.model, data.x_train[idx], data.y_train[idx], chunk=fim_chunk)
        report["fim"] = fim
    report["fim_speedup"] = fim["speedup"] if fim else None

    print(f"dataset {data.name}, profile {profile.name} ({profile.epochs} epochs), device {trained.device}, "
          f"{torch.get_num_threads()} threads, seed {seed}, forget {classes}; training {trained.train_seconds:.1f} s"
          + (" (cached checkpoint; time recorded when it was trained)" if trained.from_cache else ""))
    print(format_table(result))
    if fim:
        print(f"diagonal Fisher on {fim['samples']:,} training samples: vectorised {fim['vectorised_seconds']:.2f} s "
              f"(chunks of {fim['chunk']}), batch-size-1 loop {fim['loop_seconds']:.2f} s -> {fim['speedup']:.1f}x")
    path = Path(args.report) if getattr(args, "report", None) else _default_report_path(data.name, profile.name, seed, classes)
    atomic_write_text(path, json.dumps(_jsonable(report), indent=2))
    print(f"report: {path}")
    return 0
