"""scripts/release_assets.py gathers the release's files, and refuses a missing or broken one."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("codes", "fisher")


def _load():
    spec = importlib.util.spec_from_file_location(
        "release_assets", ROOT / "scripts" / "release_assets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_assets = _load()


def _autograder_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for member in ("otter_config.json", "environment.yml", "run_autograder", "tests/q1.py"):
            zf.writestr(member, "x")


def fake_tree(root: Path, version: str = "1.2.3") -> Path:
    """A repository with the build outputs a release gathers, for assignments ``NAMES``."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "mnemo_tutorial"\nversion = "{version}"\n'
    )
    (root / "dist").mkdir(parents=True)
    (root / "dist" / f"mnemo_tutorial-{version}-py3-none-any.whl").write_bytes(b"wheel")
    (root / "dist" / f"mnemo_tutorial-{version}.tar.gz").write_bytes(b"sdist")
    for name in NAMES:
        (root / "assignments" / "dist" / name / "student").mkdir(parents=True)
        (root / "assignments" / f"{name}.ipynb").write_text("{}")
        nb = {"cells": [{"cell_type": "markdown", "source": name}], "nbformat": 4}
        (root / "assignments" / "dist" / name / "student" / f"{name}.ipynb").write_text(
            json.dumps(nb)
        )
        ag = root / "assignments" / "dist" / name / "autograder"
        ag.mkdir(parents=True)
        _autograder_zip(ag / f"{name}-autograder_2026_01_01T00_00_00_000000.zip")
    return root


def run(root: Path, out: Path) -> int:
    return release_assets.main(["--root", str(root), "--out", str(out)])


def test_gathers_every_asset_with_checksums(tmp_path: Path):
    root = fake_tree(tmp_path / "repo")
    out = tmp_path / "release"
    assert run(root, out) == 0
    expected = {
        "mnemo_tutorial-1.2.3-py3-none-any.whl",
        "mnemo_tutorial-1.2.3.tar.gz",
        "SHA256SUMS",
        *(f"{n}-student.ipynb" for n in NAMES),
        *(f"{n}-autograder.zip" for n in NAMES),
    }
    assert {p.name for p in out.iterdir()} == expected
    sums = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == expected - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert json.loads((out / "fisher-student.ipynb").read_text())["cells"][0]["source"] == "fisher"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left"


def _remove_student(root: Path) -> None:
    (root / "assignments" / "dist" / "fisher" / "student" / "fisher.ipynb").unlink()


def _second_zip(root: Path) -> None:
    _autograder_zip(
        root / "assignments" / "dist" / "codes" / "autograder" / "codes-autograder_2.zip"
    )


def _broken_zip(root: Path) -> None:
    ag = root / "assignments" / "dist" / "codes" / "autograder"
    next(ag.glob("*.zip")).write_bytes(b"not a zip")


def _zip_without_config(root: Path) -> None:
    ag = root / "assignments" / "dist" / "codes" / "autograder"
    with zipfile.ZipFile(next(ag.glob("*.zip")), "w") as zf:
        zf.writestr("tests/q1.py", "x")


def _wheel_of_another_version(root: Path) -> None:
    (root / "dist" / "mnemo_tutorial-1.2.3-py3-none-any.whl").rename(
        root / "dist" / "mnemo_tutorial-1.2.2-py3-none-any.whl"
    )


def _empty_notebook(root: Path) -> None:
    (root / "assignments" / "dist" / "codes" / "student" / "codes.ipynb").write_text("{}")


BROKEN = {
    "no student notebook": (_remove_student, "no student notebook"),
    "two autograder zips": (_second_zip, "expected one"),
    "autograder not a zip": (_broken_zip, "not a readable zip"),
    "autograder without otter's configuration": (_zip_without_config, "otter_config.json"),
    "wheel of another version": (_wheel_of_another_version, "wheel: expected one"),
    "notebook without cells": (_empty_notebook, "without cells"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_refuses_a_missing_or_broken_asset_and_writes_nothing(tmp_path: Path, capsys, case: str):
    breaks, message = BROKEN[case]
    root = fake_tree(tmp_path / "repo")
    breaks(root)
    out = tmp_path / "release"
    assert run(root, out) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["repo"], "nothing written beside --out"


def test_refuses_a_non_empty_output_folder(tmp_path: Path, capsys):
    root = fake_tree(tmp_path / "repo")
    out = tmp_path / "release"
    out.mkdir()
    (out / "old.whl").write_bytes(b"old")
    assert run(root, out) == 1
    assert "remove it first" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["old.whl"]
    out2 = tmp_path / "empty"
    out2.mkdir()
    assert run(root, out2) == 0 and (out2 / "SHA256SUMS").is_file()
