"""Results shipped inside the package: the measurements the book's appendices and its
comparison chapter read (``mnemo_tutorial/results``), so that a chapter run from an installed
wheel, outside any checkout, shows the same committed numbers.

Each JSON file names the command that produced it, and the package version, source hash and
machine where it records them; the scripts that write them (``scripts/scaling.py``,
``scripts/robustness.py``, ``scripts/random_subset.py``, ``python -m mnemo_tutorial bench``)
take the output path as an argument, :data:`RESULTS_DIR` by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "READERS_PATH",
    "RESULTS_DIR",
    "load_result",
    "readers_path_time",
    "result_names",
    "result_path",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# per-chapter times of scripts/readers_path.py (a wheel install, outside any checkout)
READERS_PATH = "readers-path.json"


def result_names() -> list[str]:
    """The file names of the shipped results, sorted."""
    if not RESULTS_DIR.is_dir():
        return []
    return sorted(p.name for p in RESULTS_DIR.iterdir() if p.suffix in (".json", ".png"))


def result_path(name: str) -> Path:
    """The path of the shipped result ``name`` (a file name such as ``"scaling.json"``).

    Raises FileNotFoundError naming the results that are shipped when there is no such file
    (and ValueError for a name that is not a plain file name)."""
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ValueError(f"name must be the file name of a shipped result; got {name!r}")
    path = RESULTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped result {name!r} in {RESULTS_DIR}; shipped: {', '.join(result_names())}"
        )
    return path


def load_result(name: str) -> Any:
    """The shipped JSON result ``name``, parsed (see :func:`result_path`)."""
    if not name.endswith(".json"):
        raise ValueError(f"name must be a .json result; got {name!r}")
    return json.loads(result_path(name).read_text(encoding="utf-8"))


def readers_path_time(chapter: str) -> str:
    """How long ``chapter`` (a notebook file name, e.g. ``"01_unlearning_problem.ipynb"``)
    took from a wheel install in the shipped reader's-path run, with the machine, e.g.
    ``"41 s (package 0.3.0, AMD EPYC, 2 cores)"``; a sentence saying so where it was not
    measured."""
    try:
        run = load_result(READERS_PATH)
    except FileNotFoundError:
        return "not measured for this version"
    for record in run.get("chapters", []):
        if record.get("chapter") == chapter and record.get("ok"):
            return (
                f"{record['seconds']:.0f} s (package {run['package_version']}, "
                f"{run['machine']}, {run['cpus']} cores)"
            )
    return "not measured for this version"
