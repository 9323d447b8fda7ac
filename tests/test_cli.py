import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, mirror_available


def run_cli(*args, env_extra=None, timeout=600):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "mnemo_tutorial", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)


@pytest.mark.parametrize("args, word", [
    (["forget", "--dataset", "imagenet", "--forget", "1"], "--dataset"),
    (["forget", "--dataset", "mnist", "--forget", "1", "--profile", "fast"], "--profile"),
    (["forget", "--dataset", "mnist", "--forget", "1", "--epochs", "0"], "--epochs"),
    (["forget", "--dataset", "mnist", "--forget", "1", "--epochs", "-3"], "--epochs"),
    (["forget", "--dataset", "mnist", "--forget", ""], "--forget"),
    (["forget", "--dataset", "mnist", "--forget", "a"], "--forget"),
    (["sweep", "--dataset", "mnist", "--selection", "magic"], "--selection"),
])
def test_bad_arguments_exit_2_with_one_line(args, word):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not mirror_available(), reason="needs MNEMO_MIRROR with MNIST")
@pytest.mark.parametrize("forget, word", [
    ("10", "0..9"), ("3,3", "twice"), ("0,1,2,3,4,5,6,7,8,9", "leave at least one"), ("-1", "0..9"),
])
def test_bad_forget_sets_exit_2(forget, word):
    r = run_cli("forget", "--dataset", "mnist", "--forget", forget)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--forget" in lines[0] and word in lines[0], r.stderr


def test_missing_data_without_mirror_or_network_exits_2(tmp_path):
    env = {"MNEMO_DATA": str(tmp_path / "empty"), "MNEMO_MIRROR": str(tmp_path / "nomirror"),
           "MNEMO_OFFLINE": "1"}
    r = run_cli("forget", "--dataset", "mnist", "--forget", "1", env_extra=env, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "MNIST not found" in lines[0] and "train-images-idx3-ubyte.gz" in lines[0], r.stderr


@pytest.mark.skipif(not mirror_available(), reason="needs MNEMO_MIRROR with MNIST")
def test_forget_end_to_end_on_mnist(tmp_path):
    """Trains the quick model (or loads it from the cache) and forgets digits 3 and 8 at once."""
    out = tmp_path / "report.json"
    r = run_cli("forget", "--dataset", "mnist", "--forget", "3,8", "--profile", "quick", "--report", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    for key in ("dataset", "profile", "device", "seed", "forget", "before", "after", "forget_seconds", "train_seconds", "lambda1", "lambda2", "sign"):
        assert key in rep
    assert rep["forget"] == [3, 8] and rep["profile"] == "quick"
    assert rep["before"]["accuracy"] >= 97.0
    assert rep["after"]["E_F"] >= 99.5
    assert rep["after"]["A_R"] >= 95.9
    assert rep["after"]["per_class"][3] <= 0.5 and rep["after"]["per_class"][8] <= 0.5
    assert "E_F" in r.stdout and "forgetting" in r.stdout
