"""The package's code: no function longer than 50 lines, lint and formatting by ruff, and
every module's public names declared in ``__all__`` or importable from it."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mnemo_tutorial"
MAX_FUNCTION_LINES = 50


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "assignment_tests" not in p.parts)


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function: from its ``def`` line to its last line,
    without its docstring. The code is formatted by ruff (line length 100), so a function
    cannot get under the limit by packing statements onto long lines."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                lines = child.end_lineno - start + 1
                body = child.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    lines -= body[0].end_lineno - body[0].lineno + 1
                out.append((f"{prefix}{child.name}", lines))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def test_no_function_is_longer_than_the_limit():
    long = [f"{p.relative_to(ROOT)}:{name} ({n} lines)" for p in package_modules()
            for name, n in function_lengths(p) if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: " + ", ".join(long)


def test_the_length_count_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    f = tmp_path / "m.py"
    f.write_text(f'def long():\n    """doc\n    more doc"""\n{body}\n\n\ndef short():\n    return 1\n')
    assert dict(function_lengths(f)) == {"long": 61, "short": 2}


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (it is in requirements.txt)")
    return [exe]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean_on_the_package(args):
    run = subprocess.run(_ruff() + args + ["mnemo_tutorial"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_every_module_declares_its_public_names():
    missing = []
    for p in package_modules():
        tree = ast.parse(p.read_text())
        targets = [t for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
        targets += [n.target for n in tree.body if isinstance(n, ast.AnnAssign)]
        declared = any(getattr(t, "id", "") == "__all__" for t in targets)
        if not declared and p.name not in ("__main__.py",):
            missing.append(str(p.relative_to(ROOT)))
    assert not missing, "modules without __all__: " + ", ".join(missing)
