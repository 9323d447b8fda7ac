"""CI here (`.ci/run`) and the Pages workflow run the same steps (`.ci/steps`)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_local_ci_and_the_pages_workflow_run_the_same_steps():
    assert "bash .ci/steps" in (ROOT / ".ci" / "run").read_text()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["build"]["steps"]]
    assert any("bash .ci/steps" in r for r in runs), "book.yml must run .ci/steps"
    steps = (ROOT / ".ci" / "steps").read_text()
    for command in ("python assignments/build.py", "python -m pytest", "jupyter-book build",
                    "python scripts/readers_path.py", "python assignments/student_book.py"):
        assert command in steps, command
