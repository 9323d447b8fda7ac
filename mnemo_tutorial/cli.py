"""Command line: ``python -m mnemo_tutorial {forget,sweep,bench} ...``.

``forget`` trains (or loads the cached checkpoint), forgets the given classes, prints a
before/after table and writes a JSON report. ``sweep`` forgets each class in turn from the
same trained model. ``bench`` compares every unlearning method on one trained model.
Bad input exits with status 2 and one line naming the argument and what is allowed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any, Sequence

import torch

from . import data as data_mod
from .data import ChecksumError, DataNotFoundError, ImageData
from .metrics import evaluate
from .profiles import PROFILE_NAMES, default_profile_name, get_profile
from .train import TrainResult, train_or_load
from .unlearn import check_forget_classes, forget
from .utils import atomic_write_text

SELECTIONS = ("data-free", "validation", "paper")


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        raise UsageError(message)


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
        return value

    return parse


def _int_list(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if text.strip() == "" or any(p == "" for p in parts):
        raise argparse.ArgumentTypeError(f"must be comma-separated class indices such as 3 or 3,8; got {text!r}")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated class indices such as 3 or 3,8; got {text!r}") from None


def dataset_names() -> list[str]:
    from .profiles import datasets_with_profiles

    return sorted(set(data_mod.LOADERS) & set(datasets_with_profiles()))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mnemo_tutorial", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", required=True, choices=dataset_names(), help="dataset to use")
        p.add_argument("--profile", choices=PROFILE_NAMES, default=None, help="settings (default: MNEMO_PROFILE, else standard with CUDA, quick without)")
        p.add_argument("--seed", type=int, default=0, help="seed for codes, training and data order")
        p.add_argument("--epochs", type=_positive_int("--epochs"), default=None, help="override the profile's number of epochs")
        p.add_argument("--report", default=None, help="write the JSON report to this path")
        p.add_argument("--device", default=None, help="torch device (default: CUDA when available)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--selection", choices=SELECTIONS, default="data-free",
                       help="lambda choice: data-free (codes only, default), validation (a small split of the training data), paper (the paper's fixed lambdas)")
        p.add_argument("--val-per-class", type=_positive_int("--val-per-class"), default=20,
                       help="training samples per class used by --selection validation")

    p_forget = sub.add_parser("forget", help="forget one or more classes from a trained model")
    common(p_forget)
    p_forget.add_argument("--forget", required=True, type=_int_list, help="class(es) to forget, e.g. 3 or 3,8")
    selection(p_forget)
    p_sweep = sub.add_parser("sweep", help="forget each class in turn from one trained model")
    common(p_sweep)
    selection(p_sweep)
    p_bench = sub.add_parser("bench", help="compare unlearning methods on one trained model")
    common(p_bench)
    p_bench.add_argument("--forget", type=_int_list, default=[0], help="class(es) to forget (default 0)")
    try:
        from . import bench

        bench.add_arguments(p_bench)
    except ImportError:
        pass
    return parser


def _prepare(args: argparse.Namespace) -> tuple[Any, ImageData, TrainResult]:
    """Profile, data (the forget set is checked before any training) and the trained model."""
    profile = get_profile(args.dataset, args.profile or default_profile_name())
    if args.epochs is not None:
        profile = profile.replace(epochs=args.epochs)
    data = data_mod.load_dataset(args.dataset)
    if getattr(args, "forget", None) is not None:
        args.forget = _check_forget_arg(args.forget, data.num_classes)
    result = train_or_load(profile, data, seed=args.seed, device=args.device, progress=not args.no_progress)
    return profile, data, result


def carve_validation(data: ImageData, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` training samples of every class (seeded), for ``--selection validation``.
    Never test data."""
    gen = torch.Generator().manual_seed(seed + 12345)
    idx = []
    for c in range(data.num_classes):
        members = (data.y_train == c).nonzero().squeeze(1)
        take = members[torch.randperm(len(members), generator=gen)[:per_class]]
        idx.append(take)
    sel = torch.cat(idx)
    return data.x_train[sel], data.y_train[sel]


def _forget_kwargs(args: argparse.Namespace, profile: Any, data: ImageData) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(profile.extra.get("forget_kwargs", {}))
    kwargs["paper_lambdas"] = tuple(profile.paper_lambdas)
    if args.selection == "paper":
        kwargs["lambdas"] = "paper"
    elif args.selection == "validation":
        kwargs["validation"] = carve_validation(data, args.val_per_class, args.seed)
    return kwargs


def _metrics_block(m: dict) -> dict:
    return {"E_F": m["E_F"], "A_R": m["A_R"], "accuracy": m["accuracy"], "per_class": m["per_class"]}


def _fmt(v: float) -> str:
    return "  n/a" if v != v else f"{v:6.2f}"


def cmd_forget(args: argparse.Namespace) -> int:
    profile, data, trained = _prepare(args)
    classes = args.forget
    before = evaluate(trained.model, data.x_test, data.y_test, classes, data.num_classes)
    result = forget(trained.model, trained.codes, classes, **_forget_kwargs(args, profile, data))
    after = evaluate(result.model, data.x_test, data.y_test, classes, data.num_classes)
    rep = result.report
    print(f"dataset {data.name} ({data.source}), profile {profile.name}, device {trained.device}, seed {args.seed}, forget {classes}")
    print(f"{'':12s}{'E_F %':>8s}{'A_R %':>8s}{'acc %':>8s}")
    for name, m in (("before", before), ("after", after)):
        print(f"{name:12s}{_fmt(m['E_F']):>8s}{_fmt(m['A_R']):>8s}{_fmt(m['accuracy']):>8s}")
    print("per-class accuracy %:")
    print("  class  " + " ".join(f"{data.classes[c][:6]:>6s}" for c in range(data.num_classes)))
    print("  before " + " ".join(f"{v:6.1f}" for v in before["per_class"]))
    print("  after  " + " ".join(f"{v:6.1f}" for v in after["per_class"]))
    cached = " (cached checkpoint; time recorded when it was trained)" if trained.from_cache else ""
    print(f"forgetting {rep.seconds * 1000:.1f} ms ({rep.selection}: lambda1 {rep.lambda1:.3g}, lambda2 {rep.lambda2:.3g}, sign {rep.sign:+d}); "
          f"training {trained.train_seconds:.1f} s{cached}; ratio {trained.train_seconds / rep.seconds:,.0f}x")
    report = {
        "dataset": data.name,
        "profile": profile.name,
        "device": trained.device,
        "seed": args.seed,
        "epochs": profile.epochs,
        "forget": classes,
        "before": _metrics_block(before),
        "after": _metrics_block(after),
        "forget_seconds": rep.seconds,
        "train_seconds": trained.train_seconds,
        "train_cached": trained.from_cache,
        "lambda1": rep.lambda1,
        "lambda2": rep.lambda2,
        "sign": rep.sign,
        "selection": rep.selection,
        "steps": rep.steps,
        "details": rep.details,
    }
    if args.report:
        atomic_write_text(args.report, json.dumps(report, indent=2))
    return 0


def _check_forget_arg(classes: Sequence[int], num_classes: int) -> list[int]:
    try:
        return check_forget_classes(classes, num_classes)
    except ValueError as exc:
        raise UsageError(f"argument --forget: {str(exc).removeprefix('forget ')}") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    profile, data, trained = _prepare(args)
    sweep_classes = list(profile.extra.get("sweep_classes", range(data.num_classes)))
    before = evaluate(trained.model, data.x_test, data.y_test, [], data.num_classes)
    kwargs = _forget_kwargs(args, profile, data)
    rows = []
    print(f"dataset {data.name} ({data.source}), profile {profile.name}, epochs {profile.epochs}, device {trained.device}, seed {args.seed}")
    print(f"test accuracy before forgetting {before['accuracy']:.2f} %; training {trained.train_seconds:.1f} s" + (" (cached)" if trained.from_cache else ""))
    print(f"{'forget':>8s}{'E_F %':>8s}{'A_R %':>8s}{'A_R0 %':>8s}{'ms':>8s}{'lambda1':>10s}{'lambda2':>10s}{'sign':>6s}")
    for c in sweep_classes:
        result = forget(trained.model, trained.codes, [c], **kwargs)
        after = evaluate(result.model, data.x_test, data.y_test, [c], data.num_classes)
        ar0 = evaluate(trained.model, data.x_test, data.y_test, [c], data.num_classes)["A_R"]
        rep = result.report
        rows.append({
            "forget": c, "E_F": after["E_F"], "A_R": after["A_R"], "A_R_before": ar0,
            "forget_seconds": rep.seconds, "lambda1": rep.lambda1, "lambda2": rep.lambda2,
            "sign": rep.sign, "selection": rep.selection, "details": rep.details,
        })
        print(f"{c:>8d}{after['E_F']:8.2f}{after['A_R']:8.2f}{ar0:8.2f}{rep.seconds * 1000:8.1f}{rep.lambda1:10.2g}{rep.lambda2:10.2g}{rep.sign:+6d}")
    secs = [r["forget_seconds"] for r in rows]
    med = statistics.median(secs)
    print(f"min E_F {min(r['E_F'] for r in rows):.2f} %, min A_R {min(r['A_R'] for r in rows):.2f} %, "
          f"median forgetting {med * 1000:.1f} ms, train/forget {trained.train_seconds / med:,.0f}x")
    report = {
        "dataset": data.name,
        "profile": profile.name,
        "device": trained.device,
        "seed": args.seed,
        "epochs": profile.epochs,
        "train_seconds": trained.train_seconds,
        "train_cached": trained.from_cache,
        "selection": args.selection,
        "before": {"accuracy": before["accuracy"], "per_class": before["per_class"]},
        "classes": rows,
        "median_forget_seconds": med,
    }
    if args.report:
        atomic_write_text(args.report, json.dumps(report, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "forget":
            return cmd_forget(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        from . import bench

        return bench.main(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DataNotFoundError, ChecksumError) as exc:
        print(f"error: data: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
