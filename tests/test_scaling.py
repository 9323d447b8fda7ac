"""``scripts/scaling.py``: the quick mode runs into a temporary folder and writes the JSON
and the figure; the committed full results have the structure the appendix chapter reads."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "scaling.py"
COMMITTED = ROOT / "mnemo_tutorial" / "results" / "scaling.json"
POINT_KEYS = {"sweep", "classes", "hidden", "parameters", "forget_seconds", "forget_status", "fisher_seconds",
              "scan_seconds", "step_seconds", "candidates_evaluated", "train_epoch_seconds"}


def _script():
    spec = importlib.util.spec_from_file_location("scaling_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_result(result: dict, classes: list[int], hidden: list[int]) -> None:
    """The structure of a scaling JSON, every time positive."""
    for key in ("command", "package_version", "package_source_hash", "machine", "torch", "date"):
        assert isinstance(result[key], str) and result[key], key
    assert result["command"].startswith("python scripts/scaling.py")
    points = result["points"]
    assert [p["classes"] for p in points if p["sweep"] == "classes"] == classes
    assert [p["hidden"] for p in points if p["sweep"] == "hidden"] == hidden
    for p in points:
        assert POINT_KEYS <= set(p), POINT_KEYS - set(p)
        for key in ("forget_seconds", "fisher_seconds", "scan_seconds", "step_seconds", "train_epoch_seconds"):
            assert p[key] > 0, (p, key)
        assert p["fisher_seconds"] + p["scan_seconds"] + p["step_seconds"] <= p["forget_seconds"] * 1.05 + 1e-3
        assert p["parameters"] == 784 * p["hidden"] + p["hidden"] + (p["hidden"] + 1) * p["classes"]
    assert all(isinstance(v, float) for v in result["loglog_slopes"].values())
    ratio = result["classes_ratio"]
    assert ratio["classes"] == [classes[0], classes[-1]] and ratio["forget_seconds"] > 0
    # forgetting is timed on trained models that meet the criterion, as a reader would use it
    for p in points:
        assert p["model_code_accuracy"] == 100.0 and p["forget_status"] == "ok", p
        assert p["candidates_checked"] <= p["candidates_evaluated"]
    assert ratio["criterion_met"] == [True, True]


def test_quick_mode_writes_json_and_figure(tmp_path):
    out, fig = tmp_path / "s.json", tmp_path / "s.png"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--train-samples", "512", "--no-progress",
           "--out", str(out), "--figure", str(fig)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    quick = _script().QUICK
    check_result(result, quick["classes"], quick["hidden"])
    assert result["repeats"] == 1 and result["train_samples"] == 512
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))
    assert "forgetting at 100 classes / at 10" in done.stdout


def test_bad_options_are_refused_before_measuring(tmp_path):
    for bad in (["--repeats", "0"], ["--figure", "x.pdf"]):
        done = subprocess.run([sys.executable, str(SCRIPT), *bad, "--out", str(tmp_path / "x.json")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and not (tmp_path / "x.json").exists(), done.stderr


def test_the_ratio_and_slopes_catch_superlinear_growth():
    s = _script()
    rows = [{"sweep": "classes", "classes": c, "parameters": c, "forget_seconds": 1e-3 * c * c,
             "fisher_seconds": 1e-4 * c, "scan_seconds": 1e-3 * c * c, "candidates_evaluated": 10,
             "train_epoch_seconds": 1.0} for c in (10, 100, 1000)]
    slopes = s.slopes_of(rows)
    assert slopes["forget_seconds vs classes"] == pytest.approx(2.0)
    assert slopes["fisher_seconds vs classes"] == pytest.approx(1.0)
    ratio = s.classes_ratio(rows)
    assert ratio["forget_seconds"] == pytest.approx(10000) and not ratio["forget_within_linear"]
    assert s.classes_ratio([{**r, "forget_seconds": 1e-3 * r["classes"]} for r in rows])["forget_within_linear"]


def test_the_committed_results_cover_the_issue_ranges():
    result = json.loads(COMMITTED.read_text())
    full = _script().FULL
    check_result(result, full["classes"], full["hidden"])
    assert result["classes_ratio"]["classes"] == [10, 1000] and len(full["hidden"]) >= 4
    assert (ROOT / "mnemo_tutorial" / "results" / "scaling.png").exists()
    dist = result["distributed"]  # what the appendix quotes about several processes
    assert (dist["training"]["one_process"]["world_size"], dist["training"]["torchrun_2"]["world_size"]) == (1, 2)
    assert dist["training"]["torchrun_2"]["command"].startswith("torchrun --standalone --nproc_per_node=2 -m mnemo_tutorial train")
    fisher, training = dist["fisher"], dist["training"]
    one, two = training["one_process"], training["torchrun_2"]
    assert fisher["processes"] == 2 and fisher["backend"] == "gloo"
    # the appendix says the sharded Fisher is the one-process Fisher up to float32 rounding
    assert 0.0 <= fisher["max_relative_error"] <= 1e-6, fisher
    # the derived numbers it quotes are those of the two recorded runs
    assert training["speedup"] == pytest.approx(one["train_seconds"] / two["train_seconds"])
    gap = two["test_accuracy"] - one["test_accuracy"]
    assert training["accuracy_difference_points"] == pytest.approx(gap, abs=1e-9)


@pytest.mark.parametrize("off_by", [0.0, 1e-3])
def test_the_fisher_comparison_measures_the_sharded_error(monkeypatch, off_by):
    """What ``distributed_fisher`` reports is max |sharded - one| / max |one|: stand-in ranks
    that write the one-process Fisher with one tensor off by ``off_by`` of its largest entry
    give exactly that error (0 when they agree)."""
    import torch
    import torch.multiprocessing as mp

    from mnemo_tutorial.core.fisher import grouped_fisher

    s = _script()

    def ranks(fn, args, nprocs, join):
        assert nprocs == 2 and join
        _port, classes, out = args
        got = grouped_fisher(*s._fisher_case(classes))
        got[1]["fc2.weight"] = got[1]["fc2.weight"] + off_by * got[1]["fc2.weight"].abs().max()
        torch.save(got, out)

    monkeypatch.setattr(mp, "spawn", ranks)
    err = s.distributed_fisher(classes=3)["max_relative_error"]
    assert err == pytest.approx(off_by, rel=1e-3, abs=1e-7)
