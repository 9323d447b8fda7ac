"""The GPU check: every chapter top to bottom, then the standard-profile sweeps, on one GPU.

    python scripts/gpu_check.py --out gpu-check.json            # needs a CUDA device
    python scripts/gpu_check.py --allow-cpu --chapters 02 --skip-sweeps   # the mechanics, on a CPU

The chapters are executed without a Jupyter server (the GPU machine may have none): each
code cell is run in one namespace per chapter, IPython magics (the install cell's ``%pip``)
are skipped because the package is imported from this checkout, and where IPython, MyST-NB
or ipywidgets are missing small stand-ins take their place (``glue`` records the value,
``display`` prints it, widgets are inert). Figures are drawn with the Agg backend.

Then ``sweep --dataset mnist --profile standard`` and ``sweep --dataset cifar10 --profile
standard`` run through the command line, once with the profile's step (the head, for
CIFAR-10) and once with the step on every layer as in the paper, from the same trained
model. One JSON summary is written: per chapter passed/seconds/error, per sweep accuracy
before, min E_F, min A_R, median forget ms, train seconds and the device name.

With ``--readers-path`` the chapters also run as a reader runs them
(``scripts/readers_path.py``: the wheel in a fresh environment, each chapter alone, the
device chosen automatically, so CUDA here); on a machine without the package index, pass a
wheelhouse with ``--find-links`` (``pip download -d wheels <the wheel> nbconvert ipykernel``
made where the index is reachable) and the wheel with ``--wheel``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = (
    ("mnist", "standard", None),  # the MNIST profile moves every layer already
    ("cifar10", "standard", None),  # the profile's step: the head
    ("cifar10", "standard", "all"),  # every layer, as in the paper
)


def _stand_ins() -> None:
    """Minimal modules for what a Jupyter-less Python lacks (only where missing)."""
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        ipy = types.ModuleType("IPython")
        disp = types.ModuleType("IPython.display")
        disp.display = lambda *objs, **kw: [print(repr(o)[:200]) for o in objs]
        disp.Image = disp.HTML = disp.Markdown = lambda *a, **k: None
        ipy.display = disp
        sys.modules.update({"IPython": ipy, "IPython.display": disp})
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        glued: dict = {}
        mnb = types.ModuleType("myst_nb")
        mnb.glue = lambda name, value, display=True: glued.__setitem__(name, value)
        mnb.glued = glued
        sys.modules["myst_nb"] = mnb
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        sys.modules["ipywidgets"] = _inert_module("ipywidgets")


def _inert_module(name: str) -> types.ModuleType:
    class Inert:
        def __init__(self, *args, **kwargs):
            self.children = kwargs.get("children", args[0] if args else ())
            self.value = kwargs.get("value")

        def __getattr__(self, attr):
            return lambda *a, **k: None

    module = types.ModuleType(name)
    module.__getattr__ = lambda attr: Inert  # every widget class, layout and helper
    return module


def _python_source(cell_source: str) -> str:
    """The cell as plain Python: magic and shell lines become ``pass`` (same indentation)."""
    lines = []
    for line in cell_source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass  # skipped: " + stripped.split()[0]
        lines.append(line)
    return "\n".join(lines)


def run_chapter(path: Path) -> dict:
    """Execute the chapter's code cells in order; stop at the first error."""
    import matplotlib.pyplot as plt

    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    namespace = {"__name__": "__main__"}
    start = time.perf_counter()
    result = {"chapter": path.stem, "cells": len(cells), "passed": True, "error": None}
    log = io.StringIO()
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        for index, cell in enumerate(cells):
            code = compile(_python_source("".join(cell["source"])), f"{path.name}[{index}]", "exec")
            with contextlib.redirect_stdout(log):
                exec(code, namespace)
            plt.close("all")
    except Exception:  # recorded, the next chapter still runs
        result.update(passed=False, error=traceback.format_exc(limit=4)[-2000:], failed_cell=index)
    finally:
        os.chdir(cwd)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["output_tail"] = log.getvalue()[-600:]
    return result


def run_sweep(dataset: str, profile: str, params: str | None, workdir: Path) -> dict:
    """One ``sweep`` through the command line; its JSON report summarised."""
    report = workdir / f"sweep-{dataset}-{profile}-{params or 'profile'}.json"
    cmd = [sys.executable, "-m", "mnemo_tutorial", "sweep", "--dataset", dataset,
           "--profile", profile, "--device", "cuda", "--report", str(report)]
    if params:
        cmd += ["--params", params]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    out = {"dataset": dataset, "profile": profile, "step": params or "profile's",
           "exit_code": done.returncode, "seconds": round(time.perf_counter() - start, 1)}
    if not report.exists():
        out["error"] = (done.stderr or done.stdout)[-2000:]
        return out
    out.update(summarise_sweep(json.loads(report.read_text())))
    return out


def run_readers_path(args: argparse.Namespace, workdir: Path) -> dict:
    """``scripts/readers_path.py`` on this machine's device; its report (or the error)."""
    report = workdir / "readers-path.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "readers_path.py"), "--report", str(report)]
    if args.wheel:
        cmd += ["--wheel", args.wheel]
    if args.find_links:
        cmd += ["--find-links", args.find_links]
    if args.chapters:
        cmd += ["--chapters", *[c[:2] for c in args.chapters]]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if not report.exists():
        return {"exit_code": done.returncode, "error": (done.stderr or done.stdout)[-2000:]}
    return {"exit_code": done.returncode, **json.loads(report.read_text())}


def summarise_sweep(report: dict) -> dict:
    """Accuracy before, min E_F, min A_R, median forget ms, failed classes, train seconds,
    model source and device, from the CLI's ``sweep`` report (keys ``before``, ``classes``,
    ``median_forget_seconds``, ``failed``)."""
    rows = report.get("classes", [])
    e_f = [r["E_F"] for r in rows if r.get("E_F") is not None]
    a_r = [r["A_R"] for r in rows if r.get("A_R") is not None]
    median = report.get("median_forget_seconds")
    return {
        "accuracy_before": report.get("before", {}).get("accuracy"),
        "min_E_F": min(e_f, default=None),
        "min_A_R": min(a_r, default=None),
        "median_forget_ms": None if median is None else 1000 * median,
        "failed_classes": [r.get("forget") for r in rows if r.get("status") != "ok"],
        "train_seconds": report.get("train_seconds"),
        "model_source": report.get("model_source"),
        "device": report.get("device"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check.json", help="where the JSON summary goes")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter prefixes (default: all)")
    parser.add_argument("--skip-sweeps", action="store_true")
    parser.add_argument("--readers-path", action="store_true",
                        help="also run scripts/readers_path.py (the chapters from the wheel)")
    parser.add_argument("--wheel", help="with --readers-path: the wheel to install")
    parser.add_argument("--find-links", help="with --readers-path: a wheelhouse (no package index)")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (tests the mechanics)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: no CUDA device here (use --allow-cpu to test the mechanics)", file=sys.stderr)
        return 2
    os.environ.setdefault("MNEMO_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    os.environ.setdefault("MNEMO_PROFILE", "quick")
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(ROOT))
    _stand_ins()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    chapters = sorted((ROOT / "book").glob("0*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if any(p.name.startswith(c) for c in args.chapters)]
    summary = {"device": device, "torch": torch.__version__, "chapters": [], "sweeps": []}
    start = time.perf_counter()
    for path in chapters:
        summary["chapters"].append(run_chapter(path))
        print(json.dumps({k: v for k, v in summary["chapters"][-1].items() if k != "output_tail"}))
    if not args.skip_sweeps:
        with tempfile.TemporaryDirectory() as tmp:
            for dataset, profile, params in SWEEPS:
                summary["sweeps"].append(run_sweep(dataset, profile, params, Path(tmp)))
                print(json.dumps(summary["sweeps"][-1]))
    if args.readers_path:
        with tempfile.TemporaryDirectory() as tmp:
            summary["readers_path"] = run_readers_path(args, Path(tmp))
        print(json.dumps({k: v for k, v in summary["readers_path"].items() if k != "chapters"}))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["passed"] = all(c["passed"] for c in summary["chapters"]) and all(
        s.get("exit_code") == 0 for s in summary["sweeps"]) and (
        summary.get("readers_path", {}).get("exit_code", 0) == 0)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out)
    print(f"gpu_check: {'passed' if summary['passed'] else 'FAILED'} in {summary['seconds']} s -> {out}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
