"""How the costs grow: forgetting one class and training one epoch, against the number of
classes and against the number of parameters, measured in one run on this machine.

    python scripts/scaling.py --out mnemo_tutorial/results/scaling.json --figure mnemo_tutorial/results/scaling.png
    python scripts/scaling.py --quick      # small sizes, for a smoke run (seconds)

Synthetic data (the costs depend on shapes, not on what the images show): inputs of
28 x 28 pixels, the paper's MNIST MLP (784 -> hidden -> classes, sigmoid), one mnemonic
code per class. Two sweeps:

* classes C in {10, 30, 100, 300, 1000} at hidden width 1000;
* hidden width in {125, 250, 500, 1000, 2000, 4000} at C = 10 (about 0.1 M to 3.2 M parameters).

For each point: the median over ``--repeats`` of forgetting class 0 with the package's
defaults (the Fisher of every code, the ratio eta, the data-free lambda scan, which screens
candidates on the forget code and a few remaining codes and checks a passing one on all C
codes, and the step), split into its parts (the time spent in ``class_fisher_ratio``,
``select`` and ``apply_step`` (as ``core.forget`` calls them) during the real call; None where
the package no longer has one of them); and one training epoch with code mixing on
``--train-samples`` samples, after a short warm-up epoch. Times are process CPU seconds with
one torch thread (``time.process_time``), so a loaded machine changes them less than wall
time; the log-log slopes (fitted over each sweep) are what to compare across machines, not
the absolute values.

Forgetting is timed on trained models, as a reader would use it: each MLP is first trained
with codes on synthetic images of its C classes (:func:`synthetic_classes`, recipe
:data:`TRAIN`), so the data-free criterion is met and the scan stops where it would in
practice. Each point records the model's training accuracy, its code accuracy, the status of
forgetting and the candidates the scan screened and checked; ``classes_ratio`` compares the
largest C with the smallest against :data:`TARGET_RATIO`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FULL = {"classes": [10, 30, 100, 300, 1000], "hidden": [125, 250, 500, 1000, 2000, 4000]}
QUICK = {"classes": [10, 30, 100], "hidden": [125, 250, 500, 1000]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _model_and_codes(num_classes: int, hidden: int):
    """An untrained MLP and its codes (for the training-epoch timing)."""
    import torch

    from mnemo_tutorial import MLP, MnemonicCodes

    torch.manual_seed(0)
    model = MLP(784, hidden, num_classes).eval()
    codes = MnemonicCodes.random(num_classes, (1, 28, 28), seed=0)
    return model, codes


def synthetic_classes(num_classes: int, per_class: int, seed: int = 0):
    """Images of ``num_classes`` classes, ``per_class`` each: a smooth random pattern per class
    (7 x 7 uniform noise upsampled to 28 x 28) plus pixel noise (sd 0.15), clipped to [0, 1]."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    protos = torch.rand(num_classes, 1, 7, 7, generator=gen)
    protos = torch.nn.functional.interpolate(protos, size=(28, 28), mode="bilinear", align_corners=False)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    x = (protos[y] + 0.15 * torch.randn(len(y), 1, 28, 28, generator=gen)).clamp(0, 1)
    return x, y


#: How the scaling models are trained (the MNIST quick recipe's optimiser and schedule, more
#: code mixing and fewer samples per class): trained models are what forgetting is meant for,
#: and the data-free criterion is met on them (an untrained model never meets it, and the scan
#: then runs to its end: a cost no one pays in practice). At least ``min_epochs`` epochs and
#: ``min_steps`` optimiser steps (few classes means few samples per epoch).
TRAIN = {"per_class": 50, "min_epochs": 10, "min_steps": 400, "t_mix": 0.2}


def trained_model_and_codes(num_classes: int, hidden: int) -> tuple:
    """The MLP trained with codes on :func:`synthetic_classes`, its codes, and what its training
    gave: ``{"train_seconds", "train_accuracy", "code_accuracy"}`` (percent)."""
    import torch

    from mnemo_tutorial import train_model
    from mnemo_tutorial.training.profiles import Profile

    model, codes = _model_and_codes(num_classes, hidden)
    x, y = synthetic_classes(num_classes, TRAIN["per_class"])
    epochs = max(TRAIN["min_epochs"], -(-TRAIN["min_steps"] // -(-len(y) // 128)))
    profile = Profile(name="scaling-trained", dataset="synthetic", model="mlp", epochs=epochs,
                      batch_size=128, optimizer="adamw", lr=3e-3, momentum=0.0, weight_decay=0.1,
                      schedule="cosine", t_mix=TRAIN["t_mix"])
    result = train_model(model.train(), x, y, codes, profile, seed=0, device="cpu", progress=False,
                         rehearse=False)
    model = result.model.eval()
    with torch.no_grad():
        train_acc = float((model(x).argmax(1) == y).float().mean()) * 100
        code_acc = float((model(codes.codes).argmax(1) == codes.labels()).float().mean()) * 100
    return model, codes, {"train_seconds": result.train_seconds, "train_accuracy": train_acc,
                          "code_accuracy": code_acc, "epochs": epochs}


PARTS = {"fisher_seconds": "class_fisher_ratio", "scan_seconds": "select", "step_seconds": "apply_step"}


@contextlib.contextmanager
def timed_parts() -> Iterator[dict]:
    """Accumulate the process time spent in each of ``PARTS`` (functions of
    ``mnemo_tutorial.core.forget``, where forget looks them up) while the block runs; a part
    the package lacks stays None."""
    from mnemo_tutorial.core import forget as unlearn

    spent: dict = {part: None for part in PARTS}
    saved = {}
    for part, name in PARTS.items():
        original = getattr(unlearn, name, None)
        if original is None:
            continue
        spent[part] = 0.0

        def timed(*args, _f=original, _part=part, **kwargs):
            start = time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_part] += time.process_time() - start

        saved[name] = original
        setattr(unlearn, name, timed)
    try:
        yield spent
    finally:
        for name, original in saved.items():
            setattr(unlearn, name, original)


def _median_or_none(values: list) -> float | None:
    return None if any(v is None for v in values) else statistics.median(values)


def time_forget(num_classes: int, hidden: int, repeats: int) -> dict:
    """Median process time of forgetting class 0 from the trained model
    (:func:`trained_model_and_codes`), of its parts, the report's status and the number of
    lambda candidates the scan evaluated (screened) and checked on every code."""
    from mnemo_tutorial import forget

    model, codes, trained = trained_model_and_codes(num_classes, hidden)
    forget(model, codes, [0], on_failure="return")  # warm-up (allocations, first-call costs)
    times, parts, result = [], [], None
    for _ in range(repeats):
        with timed_parts() as spent:
            start = time.process_time()
            result = forget(model, codes, [0], on_failure="return")
            times.append(time.process_time() - start)
        parts.append(spent)
    details = result.report.details
    out = {"forget_seconds": statistics.median(times), "forget_status": result.report.status,
           "candidates_evaluated": details.get("candidates_evaluated"),
           "candidates_checked": details.get("candidates_checked"), "probe_route": details.get("probe"),
           **{f"model_{k}": v for k, v in trained.items()}}
    out.update({part: _median_or_none([p[part] for p in parts]) for part in PARTS})
    return out


def time_train_epoch(num_classes: int, hidden: int, samples: int) -> dict:
    """Process time of one training epoch with code mixing on synthetic data."""
    import torch

    from mnemo_tutorial import train_model
    from mnemo_tutorial.training.profiles import Profile

    model, codes = _model_and_codes(num_classes, hidden)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(samples, 1, 28, 28, generator=gen)
    y = torch.randint(0, num_classes, (samples,), generator=gen)
    profile = Profile(name="scaling", dataset="synthetic", model="mlp", epochs=1, batch_size=128,
                      optimizer="sgd", lr=0.01, t_mix=0.1)
    train_model(model, x[:256], y[:256], codes, profile, seed=0, device="cpu", progress=False, rehearse=False)  # warm-up
    start = time.process_time()
    train_model(model, x, y, codes, profile, seed=0, device="cpu", progress=False, rehearse=False)
    return {"train_epoch_seconds": time.process_time() - start}


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x): 1 is linear growth."""
    import numpy as np

    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _command() -> str:
    """This run's command line, the script named from the repository root when it lies in it."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else script.as_posix()
    return " ".join(["python", name, *sys.argv[1:]])


# ----------------------------------------------------------------------------- several processes
TRAIN_ARGS = ["train", "--dataset", "mnist", "--profile", "quick", "--epochs", "3", "--device", "cpu", "--no-progress"]
TORCHRUN = ["torchrun", "--standalone", "--nproc_per_node=2"]


def _train_once(launcher: list[str], report: Path, env: dict) -> dict:
    """One ``python -m mnemo_tutorial train`` run (launched by ``launcher``) into a fresh data
    root; its report plus the command as a reader types it and the wall time of the launch."""
    import subprocess

    argv = [*TRAIN_ARGS, "--report", str(report)]
    start = time.perf_counter()
    done = subprocess.run([*launcher, "-m", "mnemo_tutorial", *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"training failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    rep = json.loads(report.read_text())
    shown = (TORCHRUN if len(launcher) > 1 else ["python"]) + ["-m", "mnemo_tutorial", *TRAIN_ARGS]
    return {"command": " ".join(shown), "world_size": rep["world_size"], "test_accuracy": rep["test_accuracy"],
            "train_seconds": rep["train_seconds"], "launch_wall_seconds": wall, "model_source": rep["model_source"]}


def compare_training() -> dict:
    """MNIST, quick profile, 3 epochs: one process, then torchrun with two (gloo), each in a
    fresh data root (``MNEMO_MIRROR`` must hold MNIST), one after the other."""
    import os
    import tempfile

    runs = []
    for launcher in ([sys.executable], [sys.executable, "-m", "torch.distributed.run", *TORCHRUN[1:]]):
        with tempfile.TemporaryDirectory() as root:
            env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MNEMO_RETRAIN")}
            env.update(MNEMO_DATA=root, OMP_NUM_THREADS="1")
            runs.append(_train_once(launcher, Path(root) / "report.json", env))
    one, two = runs
    return {"one_process": one, "torchrun_2": two,
            "accuracy_difference_points": two["test_accuracy"] - one["test_accuracy"],
            "speedup": one["train_seconds"] / two["train_seconds"]}


def _fisher_case(classes: int):
    import torch

    from mnemo_tutorial import MLP, MnemonicCodes

    torch.manual_seed(0)
    model = MLP(784, 1000, classes).eval()
    codes = MnemonicCodes.random(classes, (1, 28, 28), seed=0)
    return model, codes.codes, codes.labels(), torch.eye(classes)


def _fisher_rank(rank: int, port: int, classes: int, out: str) -> None:
    import os

    import torch

    from mnemo_tutorial import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.setup("cpu")
    got = distributed.grouped_fisher_sharded(*_fisher_case(classes))
    if rank == 0:
        torch.save(got, out)
    distributed.teardown()


def distributed_fisher(classes: int = 100) -> dict:
    """The per-class code Fisher of the MNIST MLP (hidden 1000) for ``classes`` classes: two
    gloo processes (samples split over the ranks, one all_reduce) against one process."""
    import socket
    import tempfile

    import torch
    import torch.multiprocessing as mp

    from mnemo_tutorial.core.fisher import grouped_fisher

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_fisher_rank, args=(port, classes, f"{tmp}/f.pt"), nprocs=2, join=True)
        got = torch.load(f"{tmp}/f.pt", weights_only=True)
    want = grouped_fisher(*_fisher_case(classes))
    err = max(float((g[k] - w[k]).abs().max() / w[k].abs().max()) for g, w in zip(got, want) for k in w)
    return {"classes": classes, "hidden": 1000, "processes": 2, "backend": "gloo",
            "max_relative_error": err, "measure": "max over classes and tensors of max|sharded - one| / max|one|"}


def run(sizes: dict, repeats: int, samples: int, progress: bool = True) -> dict:
    import torch

    torch.set_num_threads(1)
    points = []
    grid = [("classes", c, 1000) for c in sizes["classes"]] + [("hidden", 10, h) for h in sizes["hidden"]]
    try:
        from tqdm.auto import tqdm
        grid_iter = tqdm(grid, desc="scaling", disable=not progress)
    except ImportError:
        grid_iter = grid
    for sweep, num_classes, hidden in grid_iter:
        params = 784 * hidden + hidden + hidden * num_classes + num_classes
        point = {"sweep": sweep, "classes": num_classes, "hidden": hidden, "parameters": params}
        point.update(time_forget(num_classes, hidden, repeats))
        point.update(time_train_epoch(num_classes, hidden, samples))
        points.append(point)
    from mnemo_tutorial import __version__
    from mnemo_tutorial.env import package_source_hash

    return {
        "command": _command(),
        "package_version": __version__, "package_source_hash": package_source_hash(),
        "torch": torch.__version__, "python": platform.python_version(), "machine": _cpu_model(),
        "threads": 1, "repeats": repeats, "train_samples": samples, "timer": "time.process_time",
        "date": time.strftime("%Y-%m-%d"), "points": points, "loglog_slopes": slopes_of(points),
        "classes_ratio": classes_ratio(points),
    }


COSTS = ("forget_seconds", "fisher_seconds", "scan_seconds", "scan_seconds_per_candidate", "train_epoch_seconds")


def slopes_of(points: list[dict]) -> dict:
    """Log-log slopes of every cost against the classes (classes sweep) and the parameters
    (hidden sweep); None for a cost that was not measured."""
    for p in points:
        scan, n = p.get("scan_seconds"), p.get("candidates_evaluated")
        p["scan_seconds_per_candidate"] = scan / n if scan is not None and n else None
    slopes = {}
    for sweep, axis in (("classes", "classes"), ("hidden", "parameters")):
        rows = [p for p in points if p["sweep"] == sweep]
        for cost in COSTS:
            ok = all(r.get(cost) for r in rows) and len(rows) > 1
            slopes[f"{cost} vs {axis}"] = loglog_slope([r[axis] for r in rows], [r[cost] for r in rows]) if ok else None
    return slopes


#: Forgetting one of 1,000 classes at most this many times forgetting one of 10 (same family).
TARGET_RATIO = 30.0


def classes_ratio(points: list[dict]) -> dict:
    """Each cost at the largest number of classes over the cost at the smallest (classes sweep),
    and the forgetting time's ratio against the target (linear growth: the ratio of the classes)."""
    rows = sorted((p for p in points if p["sweep"] == "classes"), key=lambda p: p["classes"])
    lo, hi = rows[0], rows[-1]
    out = {"classes": [lo["classes"], hi["classes"]], "linear": hi["classes"] / lo["classes"]}
    for cost in COSTS:
        out[cost] = hi[cost] / lo[cost] if lo.get(cost) and hi.get(cost) is not None else None
    out["forget_within_linear"] = out["forget_seconds"] <= out["linear"]
    out["target"] = TARGET_RATIO
    out["forget_within_target"] = out["forget_seconds"] <= TARGET_RATIO
    out["criterion_met"] = [lo.get("forget_status") == "ok", hi.get("forget_status") == "ok"]
    return out


CURVES = (("forget_seconds", "forget one class (all)", "o-"), ("fisher_seconds", "  code Fisher", "s--"),
          ("scan_seconds", "  lambda scan", "^--"), ("train_epoch_seconds", "train one epoch", "D-"))


def figure(result: dict, path: Path) -> None:
    """Two log-log panels (cost against classes, against parameters), a dotted line of slope 1
    through the first forgetting point; written through a temporary file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8), dpi=150)
    for ax, (sweep, axis, label) in zip(axes, (("classes", "classes", "number of classes"),
                                               ("hidden", "parameters", "number of parameters"))):
        rows = [p for p in result["points"] if p["sweep"] == sweep]
        xs = [r[axis] for r in rows]
        for cost, name, style in CURVES:
            slope = result["loglog_slopes"].get(f"{cost} vs {axis}")
            if slope is None:
                continue
            ax.loglog(xs, [r[cost] for r in rows], style, markersize=4, label=f"{name} (slope {slope:.2f})")
        first = rows[0]["forget_seconds"]
        ax.loglog(xs, [first * x / xs[0] for x in xs], ":", color="grey", label="slope 1 (linear)")
        ax.set_xlabel(label)
        ax.set_ylabel("CPU seconds (one thread)")
        ax.set_title(f"cost against the {label}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Forgetting and training cost against classes and parameters.")
    parser.add_argument("--out", default="mnemo_tutorial/results/scaling.json")
    parser.add_argument("--figure", default=None, help="log-log figure (PNG)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-samples", type=int, default=6000)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--distributed", action="store_true",
                        help="also train MNIST (quick, 3 epochs) in one process and with torchrun on two, and "
                             "compare the sharded code Fisher with one process (needs MNIST in MNEMO_MIRROR)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.train_samples < 1:
        parser.error("--repeats and --train-samples must be positive integers")
    if args.figure and not args.figure.endswith(".png"):
        parser.error(f"--figure must name a .png file; got {args.figure!r}")
    result = run(QUICK if args.quick else FULL, args.repeats, args.train_samples, progress=not args.no_progress)
    if args.distributed:
        result["distributed"] = {"training": compare_training(), "fisher": distributed_fisher()}
        train, fisher = result["distributed"]["training"], result["distributed"]["fisher"]
        print(f"MNIST quick 3 epochs: one process {train['one_process']['test_accuracy']:.2f} % in "
              f"{train['one_process']['train_seconds']:.1f} s, torchrun x2 {train['torchrun_2']['test_accuracy']:.2f} % "
              f"in {train['torchrun_2']['train_seconds']:.1f} s; sharded Fisher max relative error "
              f"{fisher['max_relative_error']:.2e}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    if args.figure:
        figure(result, Path(args.figure))
    for key, slope in result["loglog_slopes"].items():
        print(f"{key}: log-log slope {'n/a' if slope is None else format(slope, '.2f')}")
    ratio = result["classes_ratio"]
    print(f"forgetting at {ratio['classes'][1]} classes / at {ratio['classes'][0]}: {ratio['forget_seconds']:.0f}x "
          f"(linear: {ratio['linear']:.0f}x); Fisher {ratio['fisher_seconds']:.0f}x, scan {ratio['scan_seconds']:.0f}x")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
