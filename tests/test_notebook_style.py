"""Style of the chapter notebooks: what a reader of the built page sees.

* no code line and no text output line wider than 88 characters;
* no ``assert`` in a code cell the page shows (checks go in cells tagged ``remove-cell``
  or ``remove-input``; nbval still executes them);
* the install cell, ``_config.yml``'s repository URL and ``pyproject.toml``'s version agree;
* every figure output is shown through a glue figure directive (caption and alt text).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
MAX_WIDTH = 88
REMOVED = {"remove-cell", "remove-input"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
INSTALL = re.compile(r'^VERSION = "([^"]+)"', re.MULTILINE)


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def _text(src) -> str:
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def test_there_are_chapters():
    assert len(CHAPTERS) >= 7, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_code_lines_fit_the_column(nb: Path):
    wide = [
        (i, len(line), line[:50])
        for i, c in enumerate(_cells(nb))
        if c["cell_type"] == "code"
        for line in _text(c["source"]).splitlines()
        if len(line) > MAX_WIDTH
    ]
    assert not wide, f"code lines over {MAX_WIDTH} characters (cell, width, start): {wide}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_text_outputs_fit_the_column(nb: Path):
    wide = []
    for i, c in enumerate(_cells(nb)):
        for out in c.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                continue  # the page shows the widget (or nothing), never its text form
            texts = [out.get("text", "")] if out.get("output_type") == "stream" else []
            texts.append(out.get("data", {}).get("text/plain", ""))
            for t in texts:
                wide += [(i, len(line)) for line in _text(t).splitlines() if len(line) > MAX_WIDTH]
    assert not wide, f"output lines over {MAX_WIDTH} characters (cell, width): {wide}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_no_visible_assert(nb: Path):
    visible = [
        i
        for i, c in enumerate(_cells(nb))
        if c["cell_type"] == "code"
        and not (_tags(c) & REMOVED)
        and re.search(r"^\s*assert\b", _text(c["source"]), re.MULTILINE)
    ]
    assert not visible, f"code cells shown on the page that contain assert: {visible}"


def test_the_check_finds_a_visible_assert(tmp_path: Path):
    nb = tmp_path / "x.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "source": ["x = 1\n", "assert x == 1\n"]}
    nb.write_text(json.dumps({"cells": [cell]}))
    with pytest.raises(AssertionError, match="contain assert"):
        test_no_visible_assert(nb)
    cell["metadata"]["tags"] = ["remove-cell"]
    nb.write_text(json.dumps({"cells": [cell]}))
    test_no_visible_assert(nb)


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_install_cell_installs_the_release_only_when_missing(nb: Path):
    # the version itself is checked against pyproject.toml by tests/test_versions.py
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    first = next(c for c in _cells(nb) if c["cell_type"] == "code")
    src = _text(first["source"])
    found = INSTALL.search(src)
    assert found, "the first code cell sets VERSION"
    assert found.group(1) == version, (found.group(1), version)
    # installs only when missing, the released package at that version; never torch itself
    assert re.search(r"try:\s+import mnemo_tutorial\s+except ImportError:", src)
    pip = [line for line in src.splitlines() if "pip install" in line]
    assert len(pip) == 1 and '"mnemo-tutorial=={VERSION}"' in pip[0], pip
    assert "torch" not in pip[0].replace("mnemo-tutorial", ""), "never reinstall torch"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_figures_are_glued_with_caption_and_alt_text(nb: Path):
    cells = _cells(nb)
    shown = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and "remove-output" not in _tags(c) and "remove-cell" not in _tags(c)
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {}) and "scrapbook" not in o.get("metadata", {})
    ]
    assert not shown, f"figures shown without a caption (glue them): cells {shown}"
    glued = {
        o["metadata"]["scrapbook"]["name"]
        for c in cells
        for o in c.get("outputs", [])
        if "scrapbook" in o.get("metadata", {})
        and any(k.endswith(("image/png", "image/svg+xml")) for k in o.get("data", {}))
    }
    assert glued or not any("glue_figure(" in _text(c["source"]) for c in cells)
    md = "\n".join(_text(c["source"]) for c in cells if c["cell_type"] == "markdown")
    directives = re.findall(r"```\{glue:figure\} (\S+)\n((?::\w+:.*\n)*)\n(.+)", md)
    described = {name for name, opts, caption in directives if ":alt: " in opts and caption}
    missing = sorted(glued - described)
    assert not missing, f"glued figures without a figure directive with alt text: {missing}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_frame(nb: Path):
    cells = _cells(nb)
    md = [_text(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    opening = md[0]
    for part in ("You will learn", "Prerequisites", "Running time"):
        assert part in opening, f"the opening lacks {part!r}"
    assert any(re.search(r"^## (Summary|What we have seen)", t, re.M) for t in md)
    plain = [t for t in md if re.search(r"(?<![<`])\b[Cc]hapter [1-7]\b(?![^<]*>`)", t)]
    assert not plain, "write 'chapter N' as a {doc} cross-reference"
    nn = nb.name[:2]
    if (ROOT / "book" / "exercises" / f"ch{nn}.md").is_file():
        assert md[-1].strip() == f"```{{include}} exercises/ch{nn}.md\n```"
