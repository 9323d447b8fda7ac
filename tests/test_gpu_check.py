"""The GPU check's machinery, on the CPU: chapters run without Jupyter, stand-ins where
IPython / MyST-NB / ipywidgets are missing, failures recorded rather than raised."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = {"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_magics_become_pass_with_their_indentation():
    gc = _load()
    src = "try:\n    import x\nexcept ImportError:\n    %pip install -q x\n    import x\n!ls"
    out = gc._python_source(src)
    assert "    pass  # skipped: %pip" in out and "pass  # skipped: !ls" in out
    compile(out, "cell", "exec")  # valid Python


def test_a_chapter_runs_and_a_failing_cell_is_recorded(tmp_path):
    gc = _load()
    good = _notebook(tmp_path / "01_good.ipynb", ["x = 2", "assert x * 3 == 6\nprint('fine')"])
    bad = _notebook(tmp_path / "02_bad.ipynb", ["y = 1", "raise RuntimeError('boom')", "z = 3"])
    ok = gc.run_chapter(good)
    assert ok["passed"] and ok["error"] is None and "fine" in ok["output_tail"]
    failed = gc.run_chapter(bad)
    assert not failed["passed"] and failed["failed_cell"] == 1 and "boom" in failed["error"]


def test_stand_ins_replace_missing_jupyter_modules(tmp_path):
    """In a Python where IPython, myst_nb and ipywidgets cannot be imported, a chapter-like
    notebook that uses all three still runs."""
    nb = _notebook(tmp_path / "03_uses_jupyter.ipynb", [
        "from IPython.display import display as _show\n_show(1)",
        "from myst_nb import glue\nglue('n', 3, display=False)",
        "import ipywidgets as w\ns = w.FloatSlider(value=0.5)\nw.VBox([s]).layout.width = '1px'",
    ])
    program = textwrap.dedent(f"""
        import importlib.abc, importlib.util, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('IPython', 'myst_nb', 'ipywidgets'):
                    raise ImportError(name)
        sys.meta_path.insert(0, Block())
        spec = importlib.util.spec_from_file_location('gpu_check', {str(SCRIPT)!r})
        gc = importlib.util.module_from_spec(spec); spec.loader.exec_module(gc)
        sys.meta_path.pop(0)  # the stand-ins are installed while the real modules are blocked
        sys.meta_path.insert(0, Block())
        gc._stand_ins()
        result = gc.run_chapter(__import__('pathlib').Path({str(nb)!r}))
        assert result['passed'], result['error']
        assert sys.modules['myst_nb'].glued == {{'n': 3}}
        print('ok')
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_sweep_summary_reads_the_cli_report(tmp_path):
    """The summary of a real ``sweep`` report (a one-epoch model, so that it trains in seconds)."""
    gc = _load()
    report = tmp_path / "sweep.json"
    env = {**os.environ, "MNEMO_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    if not os.environ.get("MNEMO_MIRROR"):
        pytest.skip("no data mirror (MNEMO_MIRROR)")
    done = subprocess.run([sys.executable, "-m", "mnemo_tutorial", "sweep", "--dataset", "mnist", "--epochs", "1",
                           "--device", "cpu", "--no-progress", "--report", str(report)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode in (0, 3), done.stderr[-2000:]
    raw = json.loads(report.read_text())
    s = gc.summarise_sweep(raw)
    assert s["accuracy_before"] == raw["before"]["accuracy"] and 50 < s["accuracy_before"] <= 100
    ok = [r for r in raw["classes"] if r["status"] == "ok"]
    assert s["min_E_F"] == min(r["E_F"] for r in raw["classes"] if r.get("E_F") is not None)
    assert 0 < s["median_forget_ms"] < 60_000 and s["device"] == "cpu" and s["model_source"] == "trained"
    assert len(s["failed_classes"]) == len(raw["classes"]) - len(ok) == len(raw["failed"])
    assert s["train_seconds"] > 0


def test_refuses_to_run_without_cuda_unless_asked():
    import torch

    if torch.cuda.is_available():
        pytest.skip("the refusal only applies where there is no GPU")
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", "/dev/null"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA device" in done.stderr


def test_readers_path_step_passes_its_options_and_reads_the_report(tmp_path, monkeypatch):
    import argparse
    import subprocess as sp

    gpu_check = _load()
    seen = {}

    def fake_run(cmd, capture_output, text):
        seen["cmd"] = cmd
        report = Path(cmd[cmd.index("--report") + 1])
        report.write_text(json.dumps({"chapters": [{"chapter": "01_x.ipynb", "ok": True}]}))
        return sp.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(gpu_check.subprocess, "run", fake_run)
    args = argparse.Namespace(wheel="w.whl", find_links="wheels", chapters=["01_unl"])
    out = gpu_check.run_readers_path(args, tmp_path)
    assert out["exit_code"] == 0 and out["chapters"][0]["ok"]
    cmd = seen["cmd"]
    assert cmd[1].endswith("readers_path.py")
    assert cmd[cmd.index("--wheel") + 1] == "w.whl" and cmd[cmd.index("--find-links") + 1] == "wheels"
    assert cmd[cmd.index("--chapters") + 1:] == ["01"]

    def failing_run(cmd, capture_output, text):
        return sp.CompletedProcess(cmd, 1, "", "no wheelhouse")

    monkeypatch.setattr(gpu_check.subprocess, "run", failing_run)
    assert gpu_check.run_readers_path(args, tmp_path / "none") == {"exit_code": 1, "error": "no wheelhouse"}
