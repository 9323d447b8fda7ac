"""One version, one repository URL: every copy agrees with its source.

The version's source is ``pyproject.toml``, the repository URL's is ``_config.yml``;
``scripts/sync_version.py`` writes them into every copy (``--check`` lists the ones that
disagree). This module fails when a copy disagrees, and checks that the rewrite fixes a
disagreeing copy of each kind.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    path = ROOT / "scripts" / "sync_version.py"
    spec = importlib.util.spec_from_file_location("sync_version", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sync_version = _load()
RELEASE = sync_version.read_release(ROOT)


def _report(mismatches) -> str:
    return "\n".join(str(m) for m in mismatches) + "\nrun `python scripts/sync_version.py`"


def test_copies_outside_the_chapters_agree():
    mismatches = sync_version.check(ROOT, book=False)
    assert not mismatches, _report(mismatches)


def test_chapter_install_cells_agree():
    assert sync_version.chapters(ROOT), "no chapters found"
    mismatches = [m for m in sync_version.check(ROOT) if m.path.suffix == ".ipynb"]
    assert not mismatches, _report(mismatches)


def test_package_version_is_pyproject_version():
    import mnemo_tutorial

    assert mnemo_tutorial.__version__ == RELEASE.version, (
        "the installed metadata is stale: reinstall with `pip install -e .`"
    )


def test_grading_image_gets_the_otter_that_generates_it():
    # otter assign writes `otter-grader[grading,plugins]==<its own version>` into the grading
    # image's requirements, beside the pin of assignments/requirements-autograder.txt
    installed = importlib.metadata.version("otter-grader")
    assert installed == sync_version.OTTER_VERSION, (
        f"otter-grader {installed} is installed; the notebooks and the grading image pin "
        f"{sync_version.OTTER_VERSION} (requirements.txt should pin the same)"
    )


@pytest.mark.parametrize("name", sync_version.ASSIGNMENTS)
def test_assignment_page_links_to_the_student_notebook_at_the_tag(name: str):
    page = (ROOT / "book" / "assignments" / f"{name}.md").read_text(encoding="utf-8")
    owner, repo = RELEASE.url.removeprefix("https://github.com/").strip("/").split("/")
    path = f"assignments/student/{name}.ipynb"
    expected = (
        f"https://colab.research.google.com/github/{owner}/{repo}/blob/v{RELEASE.version}/{path}"
    )
    assert f"]({expected})" in page, f"no Markdown link to {expected}"
    colab_links = re.findall(r"https://colab\.research\.google\.com/\S+?(?=\))", page)
    assert colab_links == [expected], colab_links
    assert (ROOT / path).is_file(), f"{path} is not committed (python assignments/build.py --sync)"


def test_repository_url_is_a_github_repository():
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", RELEASE.owner_repo), RELEASE.owner_repo


# --------------------------------------------------------------------------- the rewrite
COPIED = [
    "pyproject.toml",
    "_config.yml",
    "CITATION.cff",
    "assignments/requirements-autograder.txt",
    *(f"assignments/{n}.ipynb" for n in sync_version.ASSIGNMENTS),
    *(f"book/assignments/{n}.md" for n in sync_version.ASSIGNMENTS),
]
NEW_URL = "https://github.com/someone-else/unlearning-book"


@pytest.fixture()
def bumped(tmp_path: Path) -> Path:
    """A copy of the files holding copies and of one chapter, with a new version and URL."""
    chapter = sync_version.chapters(ROOT)[0].relative_to(ROOT)
    for rel in [*COPIED, str(chapter)]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    project = tmp_path / "pyproject.toml"
    text = project.read_text(encoding="utf-8")
    project.write_text(re.sub(r'(?m)^version = ".*"$', 'version = "9.8.7"', text, count=1))
    config = tmp_path / "_config.yml"
    config.write_text(config.read_text(encoding="utf-8").replace(RELEASE.url, NEW_URL))
    return tmp_path


def _chapter(root: Path) -> Path:
    return sync_version.chapters(root)[0]


def test_check_lists_every_disagreeing_copy_and_writes_nothing(bumped: Path, capsys):
    before = {p: p.read_bytes() for p in bumped.rglob("*") if p.is_file()}
    assert sync_version.main(["--root", str(bumped), "--check"]) == 1
    err = capsys.readouterr().err
    files = {m.path.relative_to(bumped).as_posix() for m in sync_version.check(bumped)}
    expected = set(COPIED[2:]) | {_chapter(bumped).relative_to(bumped).as_posix()}
    assert files == expected
    for rel in expected:
        assert rel in err
    assert "found:" in err and "expected:" in err and "9.8.7" in err
    assert {p: p.read_bytes() for p in bumped.rglob("*") if p.is_file()} == before


def test_rewrite_makes_the_check_pass(bumped: Path):
    chapter = _chapter(bumped)
    old = json.loads(chapter.read_text(encoding="utf-8"))
    assert sync_version.main(["--root", str(bumped)]) == 0
    assert sync_version.check(bumped) == []
    citation = (bumped / "CITATION.cff").read_text(encoding="utf-8")
    assert "\nversion: 9.8.7\n" in citation and f'repository-code: "{NEW_URL}"' in citation
    reqs = (bumped / "assignments" / "requirements-autograder.txt").read_text(encoding="utf-8")
    assert "mnemo-tutorial==9.8.7" in reqs.splitlines()
    master = (bumped / "assignments" / "fisher.ipynb").read_text(encoding="utf-8")
    assert '%pip install -q \\"mnemo-tutorial[grading]==9.8.7\\"' in master
    page = (bumped / "book" / "assignments" / "fisher.md").read_text(encoding="utf-8")
    link = "someone-else/unlearning-book/blob/v9.8.7/assignments/student/fisher.ipynb"
    assert f"https://colab.research.google.com/github/{link})" in page
    # the chapter: only the install cell's source changed, to exactly this text
    new = json.loads(chapter.read_text(encoding="utf-8"))
    i = next(i for i, c in enumerate(new["cells"]) if c["cell_type"] == "code")
    assert "".join(new["cells"][i]["source"]) == BOOK_CELL.replace("X.Y.Z", "9.8.7")
    new["cells"][i]["source"] = old["cells"][i]["source"]
    assert new == old


def test_rewrite_changes_a_chapter_in_its_install_cell_only(bumped: Path):
    chapter = _chapter(bumped)
    before = chapter.read_text(encoding="utf-8")
    sync_version.main(["--root", str(bumped)])
    after = chapter.read_text(encoding="utf-8")
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm=""))

    def changed(sign: str) -> set[str]:
        return {d[1:].strip().rstrip(",") for d in diff[2:] if d.startswith(sign)}

    def cell_lines(text: str) -> set[str]:
        cells = json.loads(text)["cells"]
        src = next(c for c in cells if c["cell_type"] == "code")["source"]
        return {json.dumps(line, ensure_ascii=False) for line in src}

    assert changed("-") and changed("+"), "the install cell was not rewritten"
    assert changed("-") <= cell_lines(before), changed("-")
    assert changed("+") <= cell_lines(after), changed("+")
    assert after.endswith("\n}\n")


def test_rewrite_is_idempotent(bumped: Path):
    sync_version.main(["--root", str(bumped)])
    first = {p: p.read_bytes() for p in bumped.rglob("*") if p.is_file()}
    assert sync_version.main(["--root", str(bumped)]) == 0
    assert {p: p.read_bytes() for p in bumped.rglob("*") if p.is_file()} == first


def test_skip_book_leaves_the_chapters_alone(bumped: Path):
    chapter = _chapter(bumped)
    before = chapter.read_bytes()
    assert sync_version.main(["--root", str(bumped), "--skip-book"]) == 0
    assert chapter.read_bytes() == before
    assert sync_version.check(bumped, book=False) == []


def test_a_copy_the_rewrite_cannot_fix_fails(bumped: Path, capsys):
    page = bumped / "book" / "assignments" / "codes.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(re.sub(r"https://colab\.research\.google\.com/\S+?\)", ")", text))
    assert sync_version.main(["--root", str(bumped)]) == 1
    assert "0 links to the student notebook" in capsys.readouterr().err


BOOK_CELL = """\
# Install the companion package when it is missing (e.g. on Colab), at the book's
# version. pip keeps an installed torch that meets the requirement (torch>=2.1).
VERSION = "X.Y.Z"
try:
    import mnemo_tutorial
except ImportError:
    %pip install -q "mnemo-tutorial=={VERSION}"
    import mnemo_tutorial"""
