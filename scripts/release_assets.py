#!/usr/bin/env python
"""Gather the files attached to a GitHub release into one folder.

    python -m build                      # dist/: the wheel and the sdist
    python assignments/build.py          # assignments/dist/<name>/{student,autograder}
    python scripts/release_assets.py --out release/

For the version in ``pyproject.toml`` the folder receives

* ``mnemo_tutorial-<version>-py3-none-any.whl`` and ``mnemo_tutorial-<version>.tar.gz``;
* for every assignment (a master notebook ``assignments/<name>.ipynb``):
  ``<name>-student.ipynb``, the student notebook, and ``<name>-autograder.zip``, the
  autograder configuration ``otter assign`` wrote (for ``otter grade`` and Gradescope);
* ``SHA256SUMS``, the checksum of each of those files.

Every input is checked first (present, exactly one of each, readable: a notebook with cells,
a zip with otter's configuration and tests); nothing is written when one fails. The folder is
assembled under a temporary name beside ``--out`` and renamed at the end; ``--out`` must not
exist or be empty. Exit status: 0 on success, 1 when an asset is missing or invalid, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUTOGRADER_MEMBERS = ("otter_config.json", "environment.yml", "run_autograder")


class AssetError(Exception):
    """A release asset is missing or is not what it should be."""


def read_version(root: Path) -> str:
    """``[project] version`` of ``pyproject.toml`` (the one line, so Python 3.10 needs no tomli)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    project = text.split("[project]", 1)[-1].split("\n[", 1)[0]
    found = re.search(r'^version\s*=\s*"([^"]+)"', project, flags=re.MULTILINE)
    if found is None:
        raise AssetError(f"{root / 'pyproject.toml'}: no version in [project]")
    return found.group(1)


def assignment_names(root: Path) -> list[str]:
    """The assignments: one per master notebook ``assignments/<name>.ipynb``."""
    names = sorted(p.stem for p in (root / "assignments").glob("*.ipynb"))
    if not names:
        raise AssetError(f"no master notebooks in {root / 'assignments'}")
    return names


def only(pattern: str, folder: Path, what: str) -> Path:
    """The one file of ``folder`` matching ``pattern``; AssetError for none or several."""
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(found) != 1:
        got = ", ".join(p.name for p in found) or "none"
        raise AssetError(f"{what}: expected one {folder / pattern}, found {got}")
    return found[0]


def check_notebook(path: Path) -> None:
    """A notebook Jupyter can open: JSON with a list of cells."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AssetError(f"{path}: not a readable notebook ({e})") from e
    if not isinstance(nb, dict) or not nb.get("cells"):
        raise AssetError(f"{path}: a notebook without cells")


def check_autograder(path: Path) -> None:
    """An otter autograder zip: its configuration, environment and test files."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = set(zf.namelist())
            broken = zf.testzip()
    except (OSError, zipfile.BadZipFile) as e:
        raise AssetError(f"{path}: not a readable zip ({e})") from e
    missing = [m for m in AUTOGRADER_MEMBERS if m not in members]
    if broken is not None or missing or not any(m.startswith("tests/") for m in members):
        raise AssetError(f"{path}: not an otter autograder zip (missing {missing or 'tests/'})")


def collect(root: Path, dist: Path, assignments: Path) -> dict[str, Path]:
    """{name in the release: source file} for every asset, each checked."""
    version = read_version(root)
    assets = {
        p.name: p
        for p in (
            only(f"mnemo_tutorial-{version}-*.whl", dist, "wheel"),
            only(f"mnemo_tutorial-{version}.tar.gz", dist, "sdist"),
        )
    }
    for name in assignment_names(root):
        student = assignments / name / "student" / f"{name}.ipynb"
        if not student.is_file():
            raise AssetError(f"{name}: no student notebook {student}")
        check_notebook(student)
        zipped = only(f"{name}-autograder_*.zip", assignments / name / "autograder", name)
        check_autograder(zipped)
        assets[f"{name}-student.ipynb"] = student
        assets[f"{name}-autograder.zip"] = zipped
    return assets


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_assets(assets: dict[str, Path], out: Path) -> None:
    """Copy ``assets`` and their SHA256SUMS into ``out``, through a temporary folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AssetError(f"{out} exists and is not an empty folder; remove it first")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, src in assets.items():
            shutil.copyfile(src, tmp / name)
        sums = "".join(f"{sha256(tmp / name)}  {name}\n" for name in sorted(assets))
        (tmp / "SHA256SUMS").write_text(sums, encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to create")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    parser.add_argument("--dist", type=Path, help="wheel and sdist (default: <root>/dist)")
    parser.add_argument(
        "--assignments", type=Path, help="otter assign output (default: <root>/assignments/dist)"
    )
    args = parser.parse_args(argv)
    dist = args.dist or args.root / "dist"
    assignments = args.assignments or args.root / "assignments" / "dist"
    try:
        assets = collect(args.root, dist, assignments)
        write_assets(assets, args.out)
    except AssetError as e:
        print(f"release_assets: {e}", file=sys.stderr)
        return 1
    for name in sorted(assets):
        print(f"{args.out / name}  <- {assets[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
