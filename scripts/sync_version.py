#!/usr/bin/env python
"""Write the package's version and the repository's URL into every copy of them.

    python scripts/sync_version.py               # rewrite every copy that disagrees
    python scripts/sync_version.py --check       # list the copies that disagree; rewrite nothing
    python scripts/sync_version.py --skip-book   # leave the chapters (book/*.ipynb) alone

The version has one source, ``pyproject.toml`` (``[project] version``); the repository's URL
has one, ``_config.yml`` (``repository: url``). The copies written from them:

* ``CITATION.cff``: ``version`` and ``repository-code``;
* the install cell of every chapter (``book/[0-9][0-9]_*.ipynb``): installs
  ``mnemo-tutorial==<version>`` from PyPI when the package is missing;
* the setup cell of every assignment master notebook (``assignments/<name>.ipynb``): its
  ``%pip install`` line installs ``mnemo-tutorial[grading]==<version>``, the package with its
  ``grading`` extra;
* that extra in ``pyproject.toml`` (``[project.optional-dependencies] grading``): the
  otter-grader release the notebooks and the grading image use;
* ``assignments/requirements-autograder.txt``: what the grading image installs;
* the Colab link of every assignment page (``book/assignments/<name>.md``): the student
  notebook committed under ``assignments/student/`` at the tag ``v<version>``.

A notebook is rewritten in place with only the source of that one cell changed.
Exit status: 0 when every copy agrees (after the rewrite, without ``--check``); 1 when one
disagrees, each listed with what it holds and what it should hold (without ``--check``: a copy
the script cannot rewrite, e.g. a page without its Colab link); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import yaml

ROOT = Path(__file__).resolve().parent.parent
# the master notebooks of the course assignments (assignments/build.py builds the same ones)
ASSIGNMENTS = tuple(sorted(p.stem for p in (ROOT / "assignments").glob("*.ipynb")))
# the otter-grader release the notebooks and the grading image use (that of requirements.txt)
OTTER_VERSION = "7.0.0"
# the grading image (Python 3.13 with otter 7) gets these CPU wheels of torch and torchvision
TORCH_VERSION = "2.14.1"
TORCHVISION_VERSION = "0.29.1"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
COLAB = "https://colab.research.google.com/github"

BOOK_CELL = """\
# Install the companion package when it is missing (e.g. on Colab), at the book's
# version. pip keeps an installed torch that meets the requirement (torch>=2.1).
VERSION = "{version}"
try:
    import mnemo_tutorial
except ImportError:
    %pip install -q "mnemo-tutorial=={{VERSION}}"
    import mnemo_tutorial"""

ASSIGNMENT_PIP = '    %pip install -q "mnemo-tutorial[grading]=={version}"'
GRADING_EXTRA = 'grading = ["otter-grader=={otter}"]'

AUTOGRADER_REQUIREMENTS = """\
# Installed into the grading image that `otter grade` (Docker) or Gradescope builds from the
# autograder zip: otter adds these lines to the pip section of the image's environment.yml.
# Written by scripts/sync_version.py (edit the versions there): the book's release of the
# package from PyPI, and CPU-only wheels of torch (grading needs no GPU; the default Linux
# wheels of torch pull in the CUDA libraries, several GB).
--extra-index-url {index}
torch=={torch}
torchvision=={torchvision}
otter-grader[grading,plugins]=={otter}
mnemo-tutorial=={version}
"""


@dataclass(frozen=True)
class Release:
    """The two sources: the version (pyproject.toml) and the repository URL (_config.yml)."""

    version: str
    url: str

    @property
    def owner_repo(self) -> str:
        """``owner/name`` of the GitHub repository."""
        match = re.fullmatch(r"https://github\.com/([^/\s]+/[^/\s]+?)/?", self.url)
        if match is None:
            raise ValueError(f"_config.yml: repository url {self.url!r} is not a GitHub URL")
        return match.group(1)

    def colab_url(self, name: str) -> str:
        """Colab's link to the student notebook of assignment ``name`` at this version's tag."""
        path = f"assignments/student/{name}.ipynb"
        return f"{COLAB}/{self.owner_repo}/blob/v{self.version}/{path}"


@dataclass(frozen=True)
class Mismatch:
    """One copy that disagrees: the file, what it is, the text found and the text expected."""

    path: Path
    what: str
    found: str
    expected: str

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where}: {self.what}\n    found:    {self.found}\n    expected: {self.expected}"


# A fixer takes a file's text and the release; it returns the text with every copy in it
# rewritten and the list of (what, found, expected) for the copies that disagreed.
Fixer = Callable[[str, Release], tuple[str, list]]
# A cell fixer takes a cell's source and returns it rewritten (None: it cannot be rewritten).
CellFix = Callable[[str, Release], "str | None"]


def read_release(root: Path = ROOT) -> Release:
    """The version from ``pyproject.toml`` and the repository URL from ``_config.yml``."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return Release(version=str(project["version"]), url=str(config["repository"]["url"]))


def first_difference(found: str, expected: str) -> tuple[str, str]:
    """The first line where two texts differ (the whole texts when they are one line)."""
    a, b = found.splitlines(), expected.splitlines()
    for i in range(max(len(a), len(b))):
        la = a[i] if i < len(a) else "<end>"
        lb = b[i] if i < len(b) else "<end>"
        if la != lb:
            return la.strip(), lb.strip()
    return found, expected


def replace_one(text: str, pattern: str, expected: str, what: str) -> tuple[str, list]:
    """Replace the single line that ``pattern`` matches (multiline) by ``expected``."""
    matches = list(re.finditer(pattern, text, flags=re.MULTILINE))
    if len(matches) != 1:
        return text, [(what, f"{len(matches)} lines matching {pattern!r}", expected)]
    m = matches[0]
    if m.group(0) == expected:
        return text, []
    return text[: m.start()] + expected + text[m.end() :], [(what, m.group(0), expected)]


def fix_citation(text: str, release: Release) -> tuple[str, list]:
    """``version`` and ``repository-code`` of CITATION.cff."""
    text, a = replace_one(text, r"^version:.*$", f"version: {release.version}", "version")
    expected = f'repository-code: "{release.url}"'
    text, b = replace_one(text, r"^repository-code:.*$", expected, "repository-code")
    return text, a + b


def fix_grading_extra(text: str, release: Release) -> tuple[str, list]:
    """The ``grading`` extra of pyproject.toml: otter-grader at :data:`OTTER_VERSION`."""
    expected = GRADING_EXTRA.format(otter=OTTER_VERSION)
    return replace_one(text, r"^grading = .*$", expected, "grading extra")


def fix_requirements(text: str, release: Release) -> tuple[str, list]:
    """The whole of assignments/requirements-autograder.txt, from its template."""
    expected = AUTOGRADER_REQUIREMENTS.format(
        index=TORCH_CPU_INDEX,
        torch=TORCH_VERSION,
        torchvision=TORCHVISION_VERSION,
        otter=OTTER_VERSION,
        version=release.version,
    )
    if text == expected:
        return text, []
    return expected, [("pinned requirements", *first_difference(text, expected))]


def _cell_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _install_cell(cells: list[dict]) -> dict | None:
    """The first code cell, when it installs the package with %pip."""
    code = next((c for c in cells if c.get("cell_type") == "code"), None)
    if code is None:
        return None
    src = _cell_text(code)
    return code if "%pip install" in src and "mnemo" in src else None


def fix_notebook(text: str, cell_fix: CellFix, release: Release) -> tuple[str, list]:
    """Rewrite the source of a notebook's install cell with ``cell_fix``; nothing else moves.

    The notebook is written back as Jupyter writes it (one-space indent, non-ASCII kept, a
    final newline), so a file in that form changes in that cell only."""
    nb = json.loads(text)
    cell = _install_cell(nb.get("cells", []))
    if cell is None:
        return text, [("install cell", "no first code cell installing the package", "one")]
    found = _cell_text(cell)
    expected = cell_fix(found, release)
    if expected is None:
        return text, [("install cell", "not exactly one %pip install line", "one")]
    if found == expected:
        return text, []
    cell["source"] = expected.splitlines(keepends=True)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    return new, [("install cell", *first_difference(found, expected))]


def book_cell(found: str, release: Release) -> str | None:
    """A chapter's install cell: the whole cell, from its template."""
    return BOOK_CELL.format(version=release.version)


def assignment_cell(found: str, release: Release) -> str | None:
    """An assignment's setup cell: its one ``%pip install`` line, the rest as it is."""
    line = ASSIGNMENT_PIP.format(version=release.version)
    lines = found.splitlines(keepends=True)
    pips = [i for i, s in enumerate(lines) if s.lstrip().startswith("%pip install")]
    if len(pips) != 1:
        return None
    i = pips[0]
    lines[i] = line + ("\n" if lines[i].endswith("\n") else "")
    return "".join(lines)


def colab_link_fixer(name: str) -> Fixer:
    """The Colab link of an assignment page to its student notebook at the version's tag."""
    pattern = rf"{re.escape(COLAB)}/\S*?/assignments/student/{name}\.ipynb"

    def fix(text: str, release: Release) -> tuple[str, list]:
        found = re.findall(pattern, text)
        expected = release.colab_url(name)
        if len(found) != 1:
            return text, [("Colab link", f"{len(found)} links to the student notebook", expected)]
        if found[0] == expected:
            return text, []
        return text.replace(found[0], expected), [("Colab link", found[0], expected)]

    return fix


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks of the book."""
    return sorted((root / "book").glob("[0-9][0-9]_*.ipynb"))


def copies(root: Path = ROOT, book: bool = True) -> list[tuple[Path, Fixer]]:
    """Every file holding a copy, with its fixer; the chapters only when ``book``."""
    out: list[tuple[Path, Fixer]] = [
        (root / "CITATION.cff", fix_citation),
        (root / "pyproject.toml", fix_grading_extra),
        (root / "assignments" / "requirements-autograder.txt", fix_requirements),
    ]
    for name in ASSIGNMENTS:
        out.append((root / "assignments" / f"{name}.ipynb", _notebook_fixer(assignment_cell)))
        out.append((root / "book" / "assignments" / f"{name}.md", colab_link_fixer(name)))
    if book:
        out += [(path, _notebook_fixer(book_cell)) for path in chapters(root)]
    return out


def _notebook_fixer(cell_fix: CellFix) -> Fixer:
    def fix(text: str, release: Release) -> tuple[str, list]:
        return fix_notebook(text, cell_fix, release)

    return fix


def sync(root: Path = ROOT, write: bool = False, book: bool = True) -> list[Mismatch]:
    """Every copy that disagrees with the sources; with ``write``, each file is rewritten."""
    release = read_release(root)
    mismatches: list[Mismatch] = []
    for path, fixer in copies(root, book):
        if not path.is_file():
            mismatches.append(Mismatch(path, "file", "missing", "present"))
            continue
        text = path.read_text(encoding="utf-8")
        new, found = fixer(text, release)
        mismatches += [Mismatch(path, *f) for f in found]
        if write and new != text:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(path)
    return mismatches


def check(root: Path = ROOT, book: bool = True) -> list[Mismatch]:
    """Every copy that disagrees with the sources (nothing is written)."""
    return sync(root, write=False, book=book)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list disagreements; write nothing")
    parser.add_argument("--skip-book", action="store_true", help="leave book/*.ipynb alone")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    release = read_release(args.root)
    book = not args.skip_book
    what = f"version {release.version} and repository {release.url}"
    if not args.check:
        rewritten = sync(args.root, write=True, book=book)
        print(f"{len(rewritten)} copies rewritten to {what}")
    mismatches = check(args.root, book=book)
    for m in mismatches:
        print(m, file=sys.stderr)
    if mismatches:
        hint = "" if args.check else " (these need a hand edit)"
        print(f"{len(mismatches)} copies disagree with {what}{hint}", file=sys.stderr)
        if args.check:
            print("rewrite them with `python scripts/sync_version.py`", file=sys.stderr)
        return 1
    print(f"every copy agrees with {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
