"""scripts/bench_forget.py on the shipped MNIST quick model: the sweep keeps its results (every
digit forgotten, the others kept) and the timing is reported against a forward pass."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("bench_forget", ROOT / "scripts" / "bench_forget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_digit_is_forgotten_and_timed_against_a_forward_pass(tmp_path, capsys):
    out = load_script().main(["--repeats", "2", "--out", str(tmp_path / "b.json")])
    assert out["model_source"] == "pretrained"  # the shipped model, not one trained now
    assert [r["class"] for r in out["classes"]] == list(range(10))
    for r in out["classes"]:
        assert r["status"] == "ok" and r["E_F"] == 100.0 and r["A_R"] >= 97.5, r
        assert r["ratio_to_forward"] == r["forget_ms"] / out["forward_over_codes_ms"]
    assert json.loads((tmp_path / "b.json").read_text())["classes"] == out["classes"]
    assert "x a forward pass over the codes" in capsys.readouterr().out
