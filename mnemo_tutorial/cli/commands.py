"""Command line: ``python -m mnemo_tutorial {train,forget,sweep,bench} ...``.

``train`` trains (or loads) a profile's model and reports its test accuracy; under
``torchrun --standalone --nproc_per_node=K -m mnemo_tutorial train ...`` it trains with
DistributedDataParallel on K processes (rank 0 writes the checkpoint and the report), and
``forget``, ``sweep`` and ``bench`` take that model with ``--checkpoint PATH``; ``forget``
forgets the given classes, prints a before/after table; ``sweep`` forgets each class in turn
from the same trained model; ``bench`` compares every unlearning method on one trained model.
Every JSON report states the device used and where the model came from (trained, cache or
pretrained).

Exit status: 0 success; 1 the data is missing (or a mirror file is corrupt), one line saying
what to put where; 2 bad command-line input, one line naming the argument and what is
allowed, given before any data is read (``--params`` names are checked against the model,
and a ``--checkpoint`` against the settings it was trained with, once loaded) and, except
for ``bench --methods`` (checked against the method registry) and ``--device cuda`` without
a GPU, before torch is imported; 3 forgetting did not meet its criterion (the report is
still written, with the diagnosis).
Any other error is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from mnemo_tutorial import env
from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.core.settings import (  # torch-free
    NAMED_PARAMS,
    DataFree,
    Fixed,
    Validation,
)
from mnemo_tutorial.training import data as data_mod  # torch-free import
from mnemo_tutorial.training.profiles import (
    Profile,
    Settings,
    datasets_with_profiles,
    get_settings,
    profile_names,
)

__all__ = [
    "BUDGETS",
    "COMMANDS",
    "DESCRIPTION",
    "EPILOG",
    "SELECTIONS",
    "VALIDATION_SEED_OFFSET",
    "build_parser",
    "carve_validation",
    "cmd_bench",
    "cmd_forget",
    "cmd_sweep",
    "cmd_train",
    "dataset_names",
    "default_bench_report",
    "launch_world_size",
    "main",
    "UsageError",
    "validate",
]

if TYPE_CHECKING:  # annotations only: torch is imported once the arguments are known to be good
    import torch
    from torch import nn

    from mnemo_tutorial.core.codes import MnemonicCodes
    from mnemo_tutorial.core.forget import ForgetResult
    from mnemo_tutorial.core.settings import ForgetSettings
    from mnemo_tutorial.evaluation.metrics import ForgetMetrics
    from mnemo_tutorial.training.loop import TrainResult

SELECTIONS = tuple(s.name for s in (DataFree, Validation, Fixed))  # the selection objects' names
BUDGETS = ("quick", "full")
EXIT_DATA, EXIT_USAGE, EXIT_FORGET_FAILED = 1, 2, 3
VALIDATION_SEED_OFFSET = (
    12345  # the validation split's generator: seed + this, apart from training's
)


DESCRIPTION = (
    "One-shot unlearning with mnemonic codes: train (or load) a model, forget classes, "
    "sweep every class, or compare unlearning methods. Every command writes a JSON report "
    "(--report) stating the device and where the model came from."
)
EPILOG = (
    "exit status: 0 success; 1 data missing (one line says what to put where); 2 bad arguments "
    "(checked before any data is read); 3 forgetting did not meet its criterion "
    "(report still written)"
)


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        raise UsageError(message)


# --------------------------------------------------------------------------- argument types


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    if text.strip() == "all":
        return ["all"]  # type: ignore[list-item]  # resolved by validate (--each-class only)
    parts = [p.strip() for p in text.split(",")]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated class indices such as 3 or 3,8; got {text!r}"
        ) from None


def _lambdas(text: str) -> tuple[float, float]:
    values = [_positive_float(p) for p in text.split(",")] if text.count(",") == 1 else []
    if len(values) != 2:
        raise argparse.ArgumentTypeError(
            f"must be two positive numbers LAMBDA1,LAMBDA2 such as 1e-3,10; got {text!r}"
        )
    return values[0], values[1]


def _params(text: str) -> tuple[str, ...] | str:
    """``all`` (every tensor), ``head`` (the classifier head), ``head-bias`` (its bias), else a
    comma list of names."""
    if text.strip() in NAMED_PARAMS:
        return text.strip()
    names = tuple(p.strip() for p in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(
            "must be all, head, head-bias or comma-separated parameter names such as "
            f"fc.weight,fc.bias; got {text!r}"
        )
    return names


def _device(text: str) -> str:
    try:
        return env.check_device_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def dataset_names() -> list[str]:
    """Datasets with a loader, a known class list and at least one profile."""
    return sorted(
        set(data_mod.LOADERS) & set(data_mod.DATASET_CLASSES) & set(datasets_with_profiles())
    )


# --------------------------------------------------------------------------- parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=dataset_names(), help="dataset to use")
    p.add_argument(
        "--profile",
        default=None,
        help="named settings of the dataset, e.g. quick, standard, paper "
        "(default: MNEMO_PROFILE, else quick)",
    )
    p.add_argument(
        "--seed", type=_int_at_least(0), default=0, help="seed for codes, training and data order"
    )
    p.add_argument(
        "--epochs",
        type=_int_at_least(1),
        default=None,
        help="override the profile's number of epochs",
    )
    p.add_argument(
        "--device",
        type=_device,
        default=None,
        help="cpu, cuda or auto (default: MNEMO_DEVICE, else auto = CUDA when available)",
    )
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train from scratch even when a cached or shipped model exists (also MNEMO_RETRAIN=1)",
    )
    p.add_argument("--report", default=None, help="write the JSON report to this path")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _checkpoint_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        default=None,
        help="use the model in this checkpoint file (e.g. the one a torchrun training reported); "
        "it must have been trained with the given --dataset, --profile, --epochs and --seed",
    )


def _forget_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--selection",
        choices=SELECTIONS,
        default="data-free",
        help="lambda choice: data-free (codes only, default), validation (a small split of the "
        "training data), fixed (--lambdas, default the paper's values)",
    )
    p.add_argument(
        "--lambdas",
        type=_lambdas,
        default=None,
        help="LAMBDA1,LAMBDA2 for --selection fixed (default: the profile's paper values)",
    )
    p.add_argument(
        "--val-per-class",
        type=_int_at_least(1),
        default=20,
        help="training samples per class used by --selection validation (default 20)",
    )
    p.add_argument(
        "--params",
        type=_params,
        default=None,
        help="tensors the step may move: all, head (the output layer), head-bias (its bias) "
        "or a comma list of names (default: the profile's setting)",
    )


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(p.strip()) for p in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"must be distinct non-negative integers such as 0,1,2; got {text!r}"
        )
    return seeds


def _bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--forget",
        type=_int_list,
        default=[0],
        help="class(es) to forget (default 0); with --each-class also 'all'",
    )
    p.add_argument(
        "--methods", default="all", help="comma list of methods to run, or all (default all)"
    )
    p.add_argument(
        "--params",
        type=_params,
        default=None,
        help="tensors the one-shot rows' step may move: all, head, head-bias or a comma list "
        "of names (default: the profile's setting; the head-only control always moves the head)",
    )
    p.add_argument(
        "--budget",
        choices=BUDGETS,
        default="quick",
        help="baselines' training budget: quick (short, for a CPU) or full (the papers' settings)",
    )
    # None: the benchmark library's defaults (mnemo_tutorial.evaluation.bench.DEFAULT_*), read
    # when it runs
    p.add_argument(
        "--repeats",
        type=_int_at_least(1),
        default=None,
        help="runs of each fast method; the median time is reported "
        "(default: bench.DEFAULT_REPEATS)",
    )
    p.add_argument(
        "--repeat-below",
        type=_positive_float,
        default=None,
        help="repeat only methods whose first run takes less than this many seconds "
        "(default: bench.DEFAULT_REPEAT_BELOW)",
    )
    _fim_options(p)
    _comparison_options(p)


def _fim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fim-samples",
        type=_int_at_least(0),
        default=None,
        help="training samples for the vectorised-vs-loop Fisher timing; 0 skips it "
        "(default: bench.DEFAULT_FIM_SAMPLES)",
    )
    p.add_argument(
        "--fim-chunk",
        type=_int_at_least(1),
        default=None,
        help="samples per vectorised chunk in the Fisher timing (default: bench.DEFAULT_FIM_CHUNK)",
    )


def _comparison_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audits",
        action="store_true",
        help="also run every audit: two membership-inference attacks, linear probes at every "
        "layer, relearning, the distance to the retrained model",
    )
    p.add_argument(
        "--each-class",
        action="store_true",
        help="the full comparison: forget each class of --forget alone, on the models of every "
        "seed of --seeds, with every audit; writes one JSON with the mean and 95%% interval",
    )
    p.add_argument(
        "--seeds",
        type=_seed_list,
        default=None,
        help="training seeds of the full comparison, e.g. 0,1,2 (default: --seed)",
    )
    p.add_argument(
        "--workers",
        type=_int_at_least(1),
        default=1,
        help="processes running the comparison's cells, one torch thread each (default 1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m mnemo_tutorial",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p_train = sub.add_parser(
        "train", help="train (or load) a profile's model and report its test accuracy"
    )
    _common(p_train)
    p_forget = sub.add_parser("forget", help="forget one or more classes from a trained model")
    _common(p_forget)
    _checkpoint_option(p_forget)
    p_forget.add_argument(
        "--forget", required=True, type=_int_list, help="class(es) to forget, e.g. 3 or 3,8"
    )
    _forget_options(p_forget)
    p_sweep = sub.add_parser("sweep", help="forget each class in turn from one trained model")
    _common(p_sweep)
    _checkpoint_option(p_sweep)
    _forget_options(p_sweep)
    p_bench = sub.add_parser("bench", help="compare unlearning methods on one trained model")
    _common(p_bench)
    _checkpoint_option(p_bench)
    _bench_options(p_bench)
    return parser


# ------------------------------------------------------------------- validation (no torch, no data)


def _usage(argument: str, exc: Exception) -> UsageError:
    return UsageError(f"argument {argument}: {str(exc)}")


def launch_world_size() -> int:
    """The number of processes ``torchrun`` started (``WORLD_SIZE``; 1 without it), read
    without torch. Raises :class:`UsageError` for a value that is not a positive integer."""
    text = os.environ.get("WORLD_SIZE")
    if text is None:
        return 1
    try:
        world = int(text)
    except ValueError:
        world = 0
    if world < 1:
        raise UsageError(f"WORLD_SIZE (set by torchrun) must be a positive integer; got {text!r}")
    return world


def _validate_launch(args: argparse.Namespace) -> None:
    """Several processes only for ``train``, with a batch that splits evenly over them; a
    ``--checkpoint`` that exists and no ``--retrain`` beside it."""
    world = launch_world_size()
    if world > 1 and args.command != "train":
        raise UsageError(
            f"{args.command} runs in one process; train with torchrun, then run "
            f"'python -m mnemo_tutorial {args.command} ... --checkpoint PATH' without it "
            f"(WORLD_SIZE is {world})"
        )
    if world > 1:
        batch = get_settings(args.dataset, args.profile).train.batch_size
        if batch % world:
            raise UsageError(
                f"--nproc_per_node: the {args.profile} profile's batch size {batch} must be a "
                f"multiple of the number of processes; got {world}"
            )
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise UsageError(f"argument --checkpoint: no such file: {checkpoint}")
        if args.retrain:
            raise UsageError(
                "argument --retrain: not with --checkpoint (the checkpoint is the model to use)"
            )


def _validate_comparison(args: argparse.Namespace, num_classes: int) -> None:
    """``bench --each-class``: every class of --forget valid alone ('all': every class);
    --seeds and --workers only with it."""
    if args.command != "bench":
        return
    if not args.each_class:
        for name, value in (("--seeds", args.seeds), ("--workers", args.workers != 1 or None)):
            if value is not None:
                raise UsageError(f"argument {name}: only with --each-class")
        if args.forget == ["all"]:
            raise UsageError("argument --forget: 'all' only with --each-class")
        return
    if args.checkpoint is not None:
        raise UsageError("argument --checkpoint: not with --each-class (it trains every seed)")
    if args.forget == ["all"]:
        args.forget = list(range(num_classes))
    try:
        for c in args.forget:
            check_forget_classes([c], num_classes, name="--forget")
    except ValueError as exc:
        raise UsageError(f"argument --forget: {str(exc).removeprefix('--forget ')}") from None
    if len(set(args.forget)) != len(args.forget):
        raise UsageError(f"argument --forget: classes must not repeat; got {args.forget}")
    args.seeds = args.seeds if args.seeds is not None else [args.seed]


def validate(args: argparse.Namespace) -> argparse.Namespace:
    """Check everything that can be checked without data or torch; fill in the defaults that
    come from the environment (profile, device). Raises :class:`UsageError`."""
    profile = args.profile or env.profile_name()
    source = "--profile" if args.profile else "--profile (from MNEMO_PROFILE)"
    if profile not in profile_names(args.dataset):
        raise UsageError(
            f"argument {source}: must be one of {', '.join(profile_names(args.dataset))} "
            f"for {args.dataset}; got {profile!r}"
        )
    args.profile = profile
    _validate_launch(args)
    if args.device is None:
        try:
            args.device = env.check_device_name(os.environ.get("MNEMO_DEVICE", "auto") or "auto")
        except ValueError as exc:
            raise _usage("--device (from MNEMO_DEVICE)", exc) from None
    if not args.retrain:
        try:
            args.retrain = env.retrain_requested()
        except ValueError as exc:
            raise _usage("--retrain (from MNEMO_RETRAIN)", exc) from None
    num_classes = len(data_mod.DATASET_CLASSES[args.dataset])
    _validate_comparison(args, num_classes)
    if getattr(args, "forget", None) is not None and not getattr(args, "each_class", False):
        try:
            args.forget = check_forget_classes(args.forget, num_classes, name="--forget")
        except ValueError as exc:
            raise UsageError(f"argument --forget: {str(exc).removeprefix('--forget ')}") from None
    if getattr(args, "lambdas", None) is not None and args.selection != "fixed":
        raise UsageError(
            f"argument --lambdas: only with --selection fixed; got --selection {args.selection}"
        )
    if args.command == "bench":
        # the method registry is code: this check imports torch
        from mnemo_tutorial.methods.registry import parse_methods

        try:
            args.methods = parse_methods(args.methods)
        except ValueError as exc:
            raise _usage("--methods", exc) from None
    return args


# --------------------------------------------------------------------------- shared steps


def _select_device(name: str) -> torch.device:
    """The torch device for a validated name; asking for CUDA where there is none is bad input."""
    try:
        return env.select_device(name)
    except ValueError as exc:
        raise _usage("--device", exc) from None


def _prepare(
    args: argparse.Namespace,
) -> tuple[Settings, Profile, data_mod.ImageData, TrainResult, torch.device]:
    """Settings, data and the trained model (trained, loaded from the cache or shipped, or
    read from ``--checkpoint``). Under torchrun, joins the process group first; rank 0 reads
    the data first (it may copy it from the mirror), the other ranks after it."""
    from mnemo_tutorial import distributed
    from mnemo_tutorial.training.checkpoints import load_trained, train_or_load

    settings = get_settings(args.dataset, args.profile)
    profile = settings.train if args.epochs is None else settings.train.replace(epochs=args.epochs)
    device = _select_device(args.device)
    distributed.setup(device)
    device = distributed.rank_device(device)
    with distributed.main_first():
        data = data_mod.load_dataset(args.dataset)
    if getattr(args, "checkpoint", None) is not None:
        try:
            trained = load_trained(args.checkpoint, profile, data, seed=args.seed, device=device)
        except ValueError as exc:
            raise _usage("--checkpoint", exc) from None
        return settings, profile, data, trained, device
    trained = train_or_load(
        profile,
        data,
        seed=args.seed,
        device=device,
        retrain=args.retrain,
        progress=not args.no_progress,
    )
    return settings, profile, data, trained, device


def carve_validation(
    data: data_mod.ImageData, per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` training samples of every class (seeded; fewer where a class has fewer),
    for ``--selection validation``: x (K, *input_shape), y (K,). Never test data."""
    import torch

    gen = torch.Generator().manual_seed(seed + VALIDATION_SEED_OFFSET)
    idx = []
    labels = data.y_train.cpu()
    for c in range(data.num_classes):
        members = (labels == c).nonzero().squeeze(1)
        idx.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    sel = torch.cat(idx)
    return data.x_train[sel], data.y_train[sel]


def _with_params(
    args: argparse.Namespace, forget: ForgetSettings, model: nn.Module
) -> ForgetSettings:
    """``forget`` with ``--params`` applied, checked against ``model``."""
    from mnemo_tutorial.core.step import resolve_params

    if args.params is not None:
        forget = forget.replace(params=args.params)
    if forget.params == "auto":  # forget resolves it from the codes' rehearsal
        return forget
    try:
        resolve_params(model, forget.params)
    except ValueError as exc:
        raise UsageError(f"argument --params: {exc}") from None
    return forget


def _forget_settings(
    args: argparse.Namespace, settings: Settings, data: data_mod.ImageData, model: nn.Module
) -> ForgetSettings:
    """The profile's forgetting settings with the command line's options applied."""
    forget = _with_params(args, settings.forget, model)
    if args.selection == "fixed":
        forget = forget.replace(selection=Fixed(*args.lambdas) if args.lambdas else Fixed())
    elif args.selection == "validation":
        forget = forget.replace(
            selection=Validation(*carve_validation(data, args.val_per_class, args.seed))
        )
    elif not isinstance(forget.selection, DataFree):
        forget = forget.replace(selection=DataFree())
    return forget


def _model_block(trained: TrainResult, device: torch.device) -> dict[str, Any]:
    """Where the model came from and where this run computed: part of every report."""
    return {
        "device": env.device_description(device),
        "model_source": trained.source,
        "model": trained.describe(),
        "train_seconds": trained.train_seconds,
        "checkpoint": str(trained.checkpoint) if trained.checkpoint is not None else None,
    }


def _header(
    args: argparse.Namespace, profile: Profile, data: data_mod.ImageData, report: dict[str, Any]
) -> str:
    return (
        f"dataset {data.name} ({data.source}), profile {profile.name} ({profile.epochs} epochs), "
        f"device {report['device']}, seed {args.seed}\nmodel: {report['model']}"
    )


def _write(args: argparse.Namespace, report: dict[str, Any]) -> None:
    if args.report:
        from mnemo_tutorial.evaluation.bench import jsonable
        from mnemo_tutorial.utils import atomic_write_text

        atomic_write_text(args.report, json.dumps(jsonable(report), indent=2))
        print(f"report: {args.report}")


def _run_forget(
    model: nn.Module, codes: MnemonicCodes, classes: list[int], settings: ForgetSettings
) -> tuple[ForgetResult, str | None]:
    """``forget`` with the failure kept: (result, None) or (the failed or refused result,
    message)."""
    from mnemo_tutorial.core.forget import ForgetFailed, ForgetRefused, forget, refused_result

    t0 = time.perf_counter()
    try:
        return forget(model, codes, classes, settings), None
    except ForgetFailed as exc:
        return exc.result, str(exc)
    except ForgetRefused as exc:
        return refused_result(model, classes, exc, t0), str(exc)


def _fmt(v: float | None, spec: str = "6.2f") -> str:
    """A number for a table; n/a for NaN (a class without samples) or None (not set)."""
    return "n/a" if v is None or v != v else format(v, spec)


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or load) the model and report its test accuracy; under torchrun, rank 0 alone
    evaluates, prints and writes the report."""
    from mnemo_tutorial import distributed
    from mnemo_tutorial.evaluation.metrics import evaluate

    settings, profile, data, trained, device = _prepare(args)
    world = distributed.world_size()
    if not distributed.is_main():
        return 0
    acc = evaluate(trained.model, data.x_test, data.y_test, (), data.num_classes)
    report = {
        "dataset": data.name,
        "profile": profile.name,
        "world_size": world,
        "backend": distributed.backend(),
        "batch_size": profile.batch_size,
        "batch_size_per_process": profile.batch_size // world,
        "seed": args.seed,
        "epochs": profile.epochs,
        **_model_block(trained, device),
        "key": trained.key,
        "test_accuracy": acc["accuracy"],
        "per_class": acc["per_class"],
    }
    print(_header(args, profile, data, report))
    print(
        f"{world} process{'es' if world > 1 else ''}; test accuracy {acc['accuracy']:.2f} %; "
        f"checkpoint {report['checkpoint']}"
    )
    _write(args, report)
    return 0


def _print_forget_table(
    data: data_mod.ImageData, classes: list[int], before: ForgetMetrics, after: ForgetMetrics
) -> None:
    print(f"forget {classes}")
    print(f"{'':12s}{'E_F %':>8s}{'A_R %':>8s}{'acc %':>8s}")
    for name, m in (("before", before), ("after", after)):
        print(f"{name:12s}{_fmt(m['E_F']):>8s}{_fmt(m['A_R']):>8s}{_fmt(m['accuracy']):>8s}")
    print("per-class accuracy %:")
    print("  class  " + " ".join(f"{data.classes[c][:6]:>6s}" for c in range(data.num_classes)))
    print("  before " + " ".join(f"{v:6.1f}" for v in before["per_class"]))
    print("  after  " + " ".join(f"{v:6.1f}" for v in after["per_class"]))


def _metrics_block(m: ForgetMetrics) -> dict:
    return {
        "E_F": m["E_F"],
        "A_R": m["A_R"],
        "accuracy": m["accuracy"],
        "per_class": m["per_class"],
    }


def cmd_forget(args: argparse.Namespace) -> int:
    """Forget ``args.forget``; exit status 3 (report still written) when the criterion fails."""
    from mnemo_tutorial.evaluation.metrics import evaluate

    settings, profile, data, trained, device = _prepare(args)
    classes = args.forget
    forget_settings = _forget_settings(args, settings, data, trained.model)
    before = evaluate(trained.model, data.x_test, data.y_test, classes, data.num_classes)
    result, failure = _run_forget(trained.model, trained.codes, classes, forget_settings)
    after = evaluate(result.model, data.x_test, data.y_test, classes, data.num_classes)
    rep = result.report
    report = {
        "dataset": data.name,
        "profile": profile.name,
        "seed": args.seed,
        "epochs": profile.epochs,
        **_model_block(trained, device),
        "forget": classes,
        "status": rep.status,
        "before": _metrics_block(before),
        "after": _metrics_block(after),
        "forget_seconds": rep.seconds,
        **rep.to_dict(),
    }
    print(_header(args, profile, data, report))
    _print_forget_table(data, classes, before, after)
    print(
        f"forgetting {rep.seconds * 1000:.1f} ms "
        f"({rep.selection}: lambda1 {_fmt(rep.lambda1, '.3g')}, "
        f"lambda2 {_fmt(rep.lambda2, '.3g')}, sign {_fmt(rep.sign, '+d')}); status {rep.status}"
    )
    _write(args, report)
    if failure is not None:
        print(f"error: forgetting failed: {failure}", file=sys.stderr)
        return EXIT_FORGET_FAILED
    return 0


def _sweep_row(
    c: int, result: ForgetResult, failure: str | None, after: ForgetMetrics, ar0: float
) -> dict[str, Any]:
    rep = result.report
    return {
        "forget": c,
        "status": rep.status,
        "failure": failure,
        "E_F": after["E_F"],
        "A_R": after["A_R"],
        "A_R_before": ar0,
        "forget_seconds": rep.seconds,
        "lambda1": rep.lambda1,
        "lambda2": rep.lambda2,
        "sign": rep.sign,
        "selection": rep.selection,
        "details": rep.details,
    }


def _print_sweep_row(row: dict[str, Any]) -> None:
    """One line of the sweep's table: the class forgotten and how it went."""
    print(
        f"{row['forget']:>8d}{_fmt(row['E_F'], '8.2f')}{_fmt(row['A_R'], '8.2f')}"
        f"{_fmt(row['A_R_before'], '8.2f')}"
        f"{row['forget_seconds'] * 1000:8.1f}{_fmt(row['lambda1'], '10.2g')}"
        f"{_fmt(row['lambda2'], '10.2g')}"
        f"{_fmt(row['sign'], '+6d')}  {row['status']}"
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    """Forget each of the profile's sweep classes in turn; exit status 3 if any failed."""
    from mnemo_tutorial.evaluation.metrics import forget_metrics, predict

    settings, profile, data, trained, device = _prepare(args)
    forget_settings = _forget_settings(args, settings, data, trained.model)
    nc = data.num_classes
    preds0 = predict(trained.model, data.x_test)  # the original model, evaluated once
    before = forget_metrics(preds0, data.y_test, [], nc)
    report = {
        "dataset": data.name,
        "profile": profile.name,
        "seed": args.seed,
        "epochs": profile.epochs,
        **_model_block(trained, device),
        "selection": args.selection,
        "before": {"accuracy": before["accuracy"], "per_class": before["per_class"]},
    }
    print(_header(args, profile, data, report))
    print(f"test accuracy before forgetting {before['accuracy']:.2f} %")
    print(
        f"{'forget':>8s}{'E_F %':>8s}{'A_R %':>8s}{'A_R0 %':>8s}{'ms':>8s}"
        f"{'lambda1':>10s}{'lambda2':>10s}{'sign':>6s}  status"
    )
    rows = []
    for c in settings.sweep.class_list(nc):
        result, failure = _run_forget(trained.model, trained.codes, [c], forget_settings)
        after = forget_metrics(predict(result.model, data.x_test), data.y_test, [c], nc)
        row = _sweep_row(
            c, result, failure, after, forget_metrics(preds0, data.y_test, [c], nc)["A_R"]
        )
        rows.append(row)
        _print_sweep_row(row)
    med = statistics.median(r["forget_seconds"] for r in rows)
    report.update(
        classes=rows, median_forget_seconds=med, failed=[r["forget"] for r in rows if r["failure"]]
    )
    print(
        f"min E_F {min(r['E_F'] for r in rows):.2f} %, "
        f"min A_R {min(r['A_R'] for r in rows):.2f} %, "
        f"median forgetting {med * 1000:.1f} ms, train/forget {trained.train_seconds / med:,.0f}x"
    )
    _write(args, report)
    if report["failed"]:
        print(f"error: forgetting failed for classes {report['failed']}", file=sys.stderr)
        return EXIT_FORGET_FAILED
    return 0


def _bench_defaults(args: argparse.Namespace, bench: ModuleType) -> None:
    """Options left unset take the benchmark library's defaults (one source)."""
    for name, default in (
        ("repeats", bench.DEFAULT_REPEATS),
        ("repeat_below", bench.DEFAULT_REPEAT_BELOW),
        ("fim_samples", bench.DEFAULT_FIM_SAMPLES),
        ("fim_chunk", bench.DEFAULT_FIM_CHUNK),
    ):
        if getattr(args, name) is None:
            setattr(args, name, default)


def _fim(
    args: argparse.Namespace, bench: ModuleType, trained: TrainResult, data: data_mod.ImageData
) -> dict[str, Any] | None:
    """The vectorised-vs-loop Fisher timing on ``--fim-samples`` random training samples."""
    import torch

    if args.fim_samples == 0:
        return None
    gen = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(data.y_train.numel(), generator=gen)[: args.fim_samples]
    return bench.fim_benchmark(
        trained.model, data.x_train[idx], data.y_train[idx], chunk=args.fim_chunk
    )


def default_bench_report(dataset: str, profile: str, seed: int, classes: Sequence[int]) -> Path:
    """``<data root>/reports/bench-<dataset>-<profile>-seed<seed>-forget<classes>.json``."""
    tag = "-".join(str(c) for c in classes)
    return (
        data_mod.data_root() / "reports" / f"bench-{dataset}-{profile}-seed{seed}-forget{tag}.json"
    )


def _print_fim(fim: dict[str, Any] | None) -> None:
    if fim:
        print(
            f"diagonal Fisher on {fim['samples']:,} training samples: "
            f"vectorised {fim['vectorised_seconds']:.2f} s "
            f"(chunks of {fim['chunk']}), batch-size-1 loop {fim['loop_seconds']:.2f} s "
            f"-> {fim['speedup']:.1f}x faster"
        )


def cmd_bench(args: argparse.Namespace) -> int:
    """Every chosen method on one trained model; exit status 3 if a method failed its criterion.
    With ``--each-class``: the full comparison (:func:`cmd_compare`)."""
    import torch

    from mnemo_tutorial.evaluation import bench

    if args.each_class:
        return cmd_compare(args)
    _bench_defaults(args, bench)
    settings, profile, data, trained, device = _prepare(args)
    result = bench.benchmark(
        trained,
        data,
        args.forget,
        profile,
        _with_params(args, settings.forget, trained.model),
        seed=args.seed,
        methods=args.methods,
        repeats=args.repeats,
        repeat_below=args.repeat_below,
        audits=args.audits,
        progress=not args.no_progress,
        budget=args.budget,
    )
    report: dict[str, Any] = {
        "dataset": data.name,
        "profile": profile.name,
        "epochs": profile.epochs,
        **_provenance(sys.argv[1:] if args.argv is None else args.argv),
        **_model_block(trained, device),
        "torch_threads": torch.get_num_threads(),
        **result,
    }
    report["fim"] = _fim(args, bench, trained, data)
    print(_header(args, profile, data, report))
    print(f"forget {args.forget}, budget {args.budget}, {torch.get_num_threads()} threads")
    print(bench.format_table(result))
    _print_fim(report["fim"])
    if not args.report:
        args.report = str(default_bench_report(data.name, profile.name, args.seed, args.forget))
    _write(args, report)
    failed = [name for name, row in result["methods"].items() if row.get("status") == "failed"]
    if failed:
        print(f"error: forgetting failed its criterion: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FORGET_FAILED
    return 0


def _provenance(argv: Sequence[str]) -> dict[str, Any]:
    """Command, package version and source hash, torch, machine and date of a report."""
    import datetime
    import platform

    import torch

    from mnemo_tutorial import __version__

    mirror = os.environ.get("MNEMO_MIRROR")
    command = "python -m mnemo_tutorial " + " ".join(argv)
    return {
        "command": (f"MNEMO_MIRROR=<data mirror> {command}" if mirror else command),
        "package_version": __version__,
        "package_source_hash": env.package_source_hash(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "machine": env.machine_description("cpu"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def cmd_compare(args: argparse.Namespace) -> int:
    """``bench --each-class``: every (seed, class) cell with every audit, the summary and the
    separation of removal from suppression, printed and written as one JSON report."""

    from mnemo_tutorial.evaluation import compare
    from mnemo_tutorial.evaluation.bench import jsonable

    try:
        compare.check_params(args.dataset, args.profile, args.params)
    except ValueError as exc:
        raise UsageError(f"argument --params: {exc}") from None
    t0 = time.perf_counter()
    provenance = _provenance(sys.argv[1:] if args.argv is None else args.argv)  # the code run
    result = compare.compare(
        args.dataset,
        args.profile,
        args.seeds,
        args.forget,
        methods=args.methods,
        epochs=args.epochs,
        budget=args.budget,
        repeats=args.repeats or 3,
        workers=args.workers,
        device=str(_select_device(args.device)),
        progress=not args.no_progress,
        params=args.params,
    )
    report = {
        "dataset": args.dataset,
        "profile": args.profile,
        **provenance,
        "wall_seconds": time.perf_counter() - t0,
        **result,
    }
    print(compare.format_summary(report))
    if not args.report:
        tag = "-".join(str(s) for s in args.seeds)
        args.report = str(
            data_mod.data_root() / "reports" / f"compare-{args.dataset}-{args.profile}-{tag}.json"
        )
    _write(args, jsonable(report))
    return 0


def _leave_group() -> None:
    """Leave torchrun's process group, if this run joined one (torch is loaded by then)."""
    if "mnemo_tutorial.distributed" in sys.modules:
        sys.modules["mnemo_tutorial.distributed"].teardown()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": cmd_train,
    "forget": cmd_forget,
    "sweep": cmd_sweep,
    "bench": cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    try:
        args = validate(build_parser().parse_args(argv))
        args.argv = None if argv is None else list(argv)
        try:
            return COMMANDS[args.command](args)
        finally:
            _leave_group()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (data_mod.DataNotFoundError, data_mod.ChecksumError) as exc:
        print(f"error: data: {data_mod.one_line(exc)}", file=sys.stderr)
        return EXIT_DATA
