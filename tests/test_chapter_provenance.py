"""Each chapter records the package's source hash when it is executed; its committed outputs
must come from the package committed beside it (re-execute the chapter after a change)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mnemo_tutorial.env import package_source_hash

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
RECORD = re.compile(r"package source hash: ([0-9a-f]{16})\b")


def recorded_hashes(nb: Path) -> list[str]:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    found = []
    for c in cells:
        if c["cell_type"] != "code":
            continue
        for out in c.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                found += RECORD.findall(text)
    return found


def test_there_are_chapters():
    assert len(CHAPTERS) >= 7


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_outputs_come_from_the_current_package(nb: Path):
    found = recorded_hashes(nb)
    assert len(found) == 1, f"{nb.name}: expected one recorded package source hash, found {found}"
    current = package_source_hash()
    assert found[0] == current, (
        f"{nb.name} was executed with package {found[0]}; the package is now {current}: "
        "re-execute the chapter top to bottom"
    )


def test_a_stale_record_is_caught(tmp_path: Path):
    nb = tmp_path / "01_x.ipynb"
    out = {"output_type": "stream", "name": "stdout", "text": "package source hash: 0123456789abcdef\n"}
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": [out]}]}))
    assert recorded_hashes(nb) == ["0123456789abcdef"]
    if package_source_hash() != "0123456789abcdef":
        with pytest.raises(AssertionError, match="re-execute"):
            test_chapter_outputs_come_from_the_current_package(nb)
