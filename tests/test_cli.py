"""The command line, in-process (``cli.main``) on a tiny synthetic dataset; one subprocess
checks that help and bad input never import torch."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnemo_tutorial.cli import commands as cli
from mnemo_tutorial.training import data as data_mod
from mnemo_tutorial.training import profiles
from mnemo_tutorial.training.data import ImageData

NUM_CLASSES = 10


# ----------------------------------------------------------------------------- fixtures
def synthetic_mnist(per_class_train=30, per_class_test=10, seed=0, test_shift=0.0) -> ImageData:
    """10 classes of 1x28x28 images: a random prototype per class plus a little noise; the
    test images are shifted by ``test_shift`` (so that none can pass for a training image)."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(NUM_CLASSES, 1, 28, 28, generator=g)

    def split(n):
        y = torch.arange(NUM_CLASSES).repeat_interleave(n)
        return (protos[y] + 0.05 * torch.randn(len(y), 1, 28, 28, generator=g)).clamp(0, 1), y

    x_tr, y_tr = split(per_class_train)
    x_te, y_te = split(per_class_test)
    return ImageData("mnist", x_tr, y_tr, x_te + test_shift, y_te, [str(c) for c in range(NUM_CLASSES)], source="synthetic")


TINY = profiles.Profile(name="tiny", dataset="mnist", model="mlp", epochs=4, batch_size=32, optimizer="adamw",
                        lr=3e-3, momentum=0.0, weight_decay=0.1, schedule="cosine", t_mix=0.1,
                        model_kwargs={"hidden": 32})


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """``--profile tiny`` registered for mnist (sweep classes 0 and 1) and the synthetic data
    served instead of MNIST; the data root (checkpoints, reports) is ``tmp_path``. Records
    every load_dataset call."""
    data = synthetic_mnist()
    calls = []

    def load(name, **kwargs):
        calls.append(name)
        return data

    settings = profiles.Settings(TINY, profiles.ForgetSettings(), profiles.SweepSettings((0, 1)))
    monkeypatch.setitem(profiles._SETTINGS, ("mnist", "tiny"), settings)
    monkeypatch.setattr(data_mod, "load_dataset", load)
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path))
    monkeypatch.setenv("MNEMO_DEVICE", "cpu")
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    monkeypatch.delenv("MNEMO_PROFILE", raising=False)
    return data, calls


def run(argv, tmp_path, name="report.json"):
    """cli.main with a report path; returns (exit status, report or None)."""
    path = tmp_path / name
    status = cli.main([*argv, "--report", str(path), "--no-progress"])
    return status, (json.loads(path.read_text()) if path.exists() else None)


# ----------------------------------------------------------------------------- bad input
BAD = [
    (["forget", "--dataset", "imagenet", "--forget", "1"], ["--dataset", "imagenet"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--profile", "fast"], ["--profile", "quick", "fast"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--epochs", "0"], ["--epochs", ">= 1"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--epochs", "-3"], ["--epochs"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--seed", "x"], ["--seed"]),
    (["forget", "--dataset", "mnist", "--forget", ""], ["--forget"]),
    (["forget", "--dataset", "mnist", "--forget", "a"], ["--forget"]),
    (["forget", "--dataset", "mnist", "--forget", "10"], ["--forget", "0..9", "10"]),
    (["forget", "--dataset", "mnist", "--forget", "-1"], ["--forget", "0..9"]),
    (["forget", "--dataset", "mnist", "--forget", "3,3"], ["--forget", "twice"]),
    (["forget", "--dataset", "mnist", "--forget", "0,1,2,3,4,5,6,7,8,9"], ["--forget", "leave at least one"]),
    (["forget", "--dataset", "faces", "--forget", "40"], ["--forget", "0..39"]),
    (["forget", "--dataset", "cifar10", "--forget", "10"], ["--forget", "0..9"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--device", "tpu"], ["--device", "cpu", "cuda", "auto"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--lambdas", "1e-3,10"], ["--lambdas", "fixed"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--selection", "fixed", "--lambdas", "1e-3"], ["--lambdas"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--selection", "fixed", "--lambdas", "0,1"], ["--lambdas"]),
    (["forget", "--dataset", "mnist", "--forget", "1", "--params", "fc1.weight,"], ["--params"]),
    (["sweep", "--dataset", "mnist", "--selection", "magic"], ["--selection", "data-free"]),
    (["sweep", "--dataset", "mnist", "--val-per-class", "0"], ["--val-per-class"]),
    (["train", "--dataset", "mnist", "--profile", "huge"], ["--profile", "huge"]),
    (["bench", "--dataset", "mnist", "--budget", "huge"], ["--budget", "quick", "full"]),
    (["bench", "--dataset", "mnist", "--repeats", "0"], ["--repeats"]),
    (["bench", "--dataset", "mnist", "--repeat-below", "-1"], ["--repeat-below"]),
    (["bench", "--dataset", "mnist", "--fim-chunk", "0"], ["--fim-chunk"]),
    (["bench", "--dataset", "mnist", "--forget", "12"], ["--forget", "0..9"]),
    (["bench", "--dataset", "mnist", "--methods", "mnemonic,oracle"], ["--methods", "oracle"]),
    (["bench", "--dataset", "mnist", "--forget", "all"], ["--forget", "'all' only with --each-class"]),
    (["bench", "--dataset", "mnist", "--seeds", "0,1"], ["--seeds", "only with --each-class"]),
    (["bench", "--dataset", "mnist", "--workers", "2"], ["--workers", "only with --each-class"]),
    (["bench", "--dataset", "mnist", "--each-class", "--seeds", "0,0"], ["--seeds", "distinct"]),
    (["bench", "--dataset", "mnist", "--each-class", "--seeds", "-1"], ["--seeds"]),
    (["bench", "--dataset", "mnist", "--each-class", "--forget", "1,1"], ["--forget", "repeat"]),
    (["bench", "--dataset", "mnist", "--each-class", "--forget", "10"], ["--forget", "0..9"]),
    (["bench", "--dataset", "mnist", "--each-class", "--workers", "0"], ["--workers"]),
    (["bench", "--dataset", "mnist", "--each-class", "--params", "fc9.weight"], ["--params", "fc9.weight"]),
    (["bench", "--dataset", "mnist", "--each-class", "--checkpoint", "pyproject.toml"], ["--checkpoint", "--each-class"]),
    (["frobnicate"], ["frobnicate"]),
]


@pytest.mark.parametrize("argv, words", BAD)
def test_bad_arguments_exit_2_with_one_line_before_any_data(argv, words, capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the arguments were checked")

    monkeypatch.setattr(data_mod, "load_dataset", no_data)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and all(w in err[0] for w in words), err


@pytest.mark.parametrize("var, value, word", [
    ("MNEMO_DEVICE", "gpu", "MNEMO_DEVICE"), ("MNEMO_PROFILE", "huge", "MNEMO_PROFILE"), ("MNEMO_RETRAIN", "maybe", "MNEMO_RETRAIN"),
])
def test_bad_environment_exits_2_naming_the_variable(var, value, word, capsys, monkeypatch):
    monkeypatch.setenv(var, value)
    assert cli.main(["train", "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and value in err[0], err


def test_help_and_bad_input_do_not_import_torch():
    """``python -m mnemo_tutorial --help`` and a bad argument, run as the command runs them
    (runpy), leave torch unimported."""
    code = (
        "import runpy, sys\n"
        "codes = []\n"
        "for argv in (['--help'], ['forget', '--dataset', 'mnist', '--forget', '10']):\n"
        "    sys.argv = ['mnemo_tutorial', *argv]\n"
        "    try:\n"
        "        runpy.run_module('mnemo_tutorial', run_name='__main__', alter_sys=True)\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "print('RESULT', codes, 'torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "RESULT [0, 2] False", r.stdout + r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_is_bad_input(capsys, monkeypatch):
    monkeypatch.setattr(data_mod, "load_dataset", lambda *a, **k: pytest.fail("data loaded"))
    assert cli.main(["train", "--dataset", "mnist", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device" in err[0] and "CUDA" in err[0], err


# ----------------------------------------------------------------------------- data errors vs bugs
@pytest.mark.parametrize("dataset, words", [
    ("mnist", ["MNIST not found", "train-images-idx3-ubyte.gz", "MNEMO_MIRROR"]),
    ("faces", ["faces not found", "att_faces.tar.gz", "MNEMO_MIRROR"]),
])
def test_missing_data_exits_1_with_one_line(dataset, words, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("MNEMO_MIRROR", str(tmp_path / "nomirror"))
    monkeypatch.setenv("MNEMO_OFFLINE", "1")
    assert cli.main(["forget", "--dataset", dataset, "--forget", "3", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not (tmp_path / "empty" / "checkpoints").exists()


def test_an_unexpected_error_keeps_its_traceback(monkeypatch):
    """Only the CLI's own argument errors become exit status 2; a ValueError from deeper down is a bug."""
    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(data_mod, "load_dataset", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(["train", "--dataset", "mnist", "--device", "cpu"])


# ----------------------------------------------------------------------------- validation split
def test_carve_validation_takes_training_samples_only():
    data = synthetic_mnist(test_shift=5.0)  # no test image can look like a training image
    x, y = cli.carve_validation(data, per_class=4, seed=0)
    assert x.shape == (40, 1, 28, 28) and torch.bincount(y, minlength=10).tolist() == [4] * 10
    assert float(x.max()) <= 1.0  # no test image
    train_rows = {tuple(r.tolist()) for r in data.x_train.flatten(1)}
    assert all(tuple(r.tolist()) in train_rows for r in x.flatten(1))
    for xi, yi in zip(x, y):  # each sample keeps its own label
        assert int(data.y_train[(data.x_train == xi).flatten(1).all(1)][0]) == int(yi)
    x2, _ = cli.carve_validation(data, per_class=4, seed=0)
    x3, _ = cli.carve_validation(data, per_class=4, seed=1)
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    xa, ya = cli.carve_validation(data, per_class=100, seed=0)  # more than a class has: all of it
    assert len(ya) == len(data.y_train)


# ----------------------------------------------------------------------------- happy paths
def test_train_reports_and_loads_the_cached_model_the_second_time(tiny, tmp_path, monkeypatch):
    data, calls = tiny
    status, rep = run(["train", "--dataset", "mnist", "--profile", "tiny", "--seed", "3"], tmp_path)
    assert status == 0 and calls == ["mnist"]
    assert (rep["dataset"], rep["profile"], rep["world_size"], rep["seed"], rep["epochs"]) == ("mnist", "tiny", 1, 3, 4)
    assert rep["device"] == "cpu" and rep["model_source"] == "trained" and rep["model"].startswith("trained in")
    assert rep["test_accuracy"] >= 90.0 and rep["train_seconds"] > 0.0
    assert rep["checkpoint"].startswith(str(tmp_path)) and Path(rep["checkpoint"]).exists()
    status, again = run(["train", "--dataset", "mnist", "--profile", "tiny", "--seed", "3"], tmp_path, "again.json")
    assert status == 0 and again["model_source"] == "cache" and again["model"].startswith("loaded the cached model")
    assert again["test_accuracy"] == rep["test_accuracy"] and again["train_seconds"] == rep["train_seconds"]
    status, fresh = run(["train", "--dataset", "mnist", "--profile", "tiny", "--seed", "3", "--retrain"], tmp_path, "r.json")
    assert status == 0 and fresh["model_source"] == "trained"
    monkeypatch.setenv("MNEMO_RETRAIN", "1")
    status, fresh = run(["train", "--dataset", "mnist", "--profile", "tiny", "--seed", "3"], tmp_path, "e.json")
    assert status == 0 and fresh["model_source"] == "trained"


def test_forget_with_fixed_lambdas_forgets_the_class(tiny, tmp_path, capsys):
    status, rep = run(["forget", "--dataset", "mnist", "--profile", "tiny", "--forget", "2", "--selection", "fixed",
                       "--lambdas", "1e-3,10"], tmp_path)
    assert status == 0, capsys.readouterr().err
    assert rep["forget"] == [2] and rep["status"] == "ok" and rep["selection"] == "fixed"
    assert (rep["lambda1"], rep["lambda2"]) == (1e-3, 10.0)
    assert rep["device"] == "cpu" and rep["model_source"] in ("trained", "cache")
    assert rep["before"]["E_F"] <= 10.0 and rep["after"]["per_class"][2] < rep["before"]["per_class"][2]


def test_forget_params_limits_the_step_to_the_named_tensors(tiny, tmp_path):
    status, rep = run(["forget", "--dataset", "mnist", "--profile", "tiny", "--forget", "1", "--selection", "fixed",
                       "--params", "fc2.weight,fc2.bias"], tmp_path)
    assert status == 0 and set(rep["steps"]) == {"fc2.weight", "fc2.bias"}


def test_unknown_params_are_bad_input(tiny, tmp_path, capsys):
    status, rep = run(["forget", "--dataset", "mnist", "--profile", "tiny", "--forget", "1", "--params", "fc.weight"], tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and rep is None and len(err) == 1 and "fc.weight" in err[0] and "fc1.weight" in err[0]


def test_selection_validation_uses_a_training_split(tiny, tmp_path, monkeypatch):
    data, _ = tiny
    seen = {}
    real = cli.carve_validation

    def spy(d, per_class, seed):
        seen["args"] = (d, per_class, seed)
        return real(d, per_class, seed)

    monkeypatch.setattr(cli, "carve_validation", spy)
    status, rep = run(["sweep", "--dataset", "mnist", "--profile", "tiny", "--selection", "validation",
                       "--val-per-class", "3", "--seed", "1"], tmp_path)
    assert status in (0, 3)
    assert seen["args"] == (data, 3, 1)
    assert rep["selection"] == "validation" and all(r["selection"] == "validation" for r in rep["classes"])


def test_sweep_forgets_each_profile_class(tiny, tmp_path):
    status, rep = run(["sweep", "--dataset", "mnist", "--profile", "tiny", "--selection", "fixed"], tmp_path)
    assert status == 0
    assert [r["forget"] for r in rep["classes"]] == [0, 1]  # the profile's sweep classes
    assert rep["device"] == "cpu" and rep["model_source"] in ("trained", "cache")
    assert rep["median_forget_seconds"] == statistics.median(r["forget_seconds"] for r in rep["classes"])
    for r in rep["classes"]:
        assert r["A_R_before"] >= 90.0 and r["status"] == "ok" and r["lambda1"] == 1e-3


def test_bench_runs_the_chosen_methods(tiny, tmp_path):
    status, rep = run(["bench", "--dataset", "mnist", "--profile", "tiny", "--forget", "3", "--methods", "mnemonic,finetune",
                       "--repeats", "1", "--fim-samples", "8", "--fim-chunk", "4"], tmp_path)
    assert status in (0, 3)
    assert list(rep["methods"]) == ["mnemonic", "finetune"] and rep["forget"] == [3] and rep["budget"] == "quick"
    assert rep["device"] == "cpu" and rep["model_source"] in ("trained", "cache")
    assert rep["methods"]["mnemonic"]["relative_time"] == pytest.approx(1.0)
    assert rep["fim"]["samples"] == 8 and rep["fim"]["max_rel_diff"] < 1e-3
    assert status == (3 if rep["methods"]["mnemonic"]["status"] == "failed" else 0)


def test_bench_each_class_is_the_full_comparison(tiny, tmp_path, capsys):
    status, rep = run(["bench", "--dataset", "mnist", "--profile", "tiny", "--each-class", "--forget", "0,1",
                       "--seeds", "0,1", "--methods", "mnemonic,suppress,retrain", "--repeats", "1"], tmp_path)
    assert status == 0 and [(c["seed"], c["class"]) for c in rep["cells"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert set(rep["summary"]) == {"original", "mnemonic", "suppress", "retrain"}
    assert rep["summary"]["suppress"]["E_F"]["n"] == 4 and set(rep["separation"]) == {
        "mia_auc", "mia_entropy", "probe_first", "probe_last", "probe_output", "relearn_steps", "js_to_reference"}
    for key in ("command", "package_version", "package_source_hash", "machine", "torch_version", "date"):
        assert rep[key], key
    assert "python -m mnemo_tutorial bench --dataset mnist" in rep["command"] and "--each-class" in rep["command"]
    retrain_row = rep["cells"][0]["methods"]["retrain"]
    assert retrain_row["audits"]["js_reference"] == "the model retrained with seed 1"
    assert rep["cells"][0]["methods"]["suppress"]["role"] == "control"
    out = capsys.readouterr().out
    assert "4 cells (2 seeds x 2 classes)" in out and "separate" in out


def test_bench_params_move_the_one_shot_rows_tensors(tiny, tmp_path, monkeypatch):
    from mnemo_tutorial.evaluation import bench

    seen, real = [], bench.benchmark

    def recording(trained, data, classes, profile, forget_settings=None, **kwargs):
        seen.append(forget_settings.params)
        return real(trained, data, classes, profile, forget_settings, **kwargs)

    monkeypatch.setattr(bench, "benchmark", recording)
    for extra in ([], ["--each-class", "--seeds", "0"]):
        status, rep = run(["bench", "--dataset", "mnist", "--profile", "tiny", "--forget", "1", "--methods",
                           "mnemonic", "--repeats", "1", "--fim-samples", "0", "--params", "head", *extra], tmp_path)
        assert status in (0, 3) and "--params head" in rep["command"]
    assert seen == ["head", "head"]


def test_bench_writes_its_default_report_under_the_data_root(tiny, tmp_path):
    status = cli.main(["bench", "--dataset", "mnist", "--profile", "tiny", "--methods", "mnemonic", "--repeats", "1",
                       "--fim-samples", "0", "--no-progress"])
    path = tmp_path / "reports" / "bench-mnist-tiny-seed0-forget0.json"
    assert status in (0, 3) and path.exists() and json.loads(path.read_text())["fim"] is None


def test_failed_forgetting_exits_3_and_still_writes_the_diagnosis(tiny, tmp_path, monkeypatch, capsys):
    from mnemo_tutorial.core import forget as unlearn

    real = unlearn.forget

    def failing(model, codes, classes, settings=None, **kwargs):
        result = real(model, codes, classes, settings, **kwargs)
        result.report.status = "failed"
        result.report.details["diagnosis"] = {"criterion_met": False, "why": "test"}
        raise unlearn.ForgetFailed("no grid point met the criterion", result)

    monkeypatch.setattr(unlearn, "forget", failing)
    status, rep = run(["forget", "--dataset", "mnist", "--profile", "tiny", "--forget", "4", "--selection", "fixed"], tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 3 and len(err) == 1 and "no grid point" in err[0]
    assert rep["status"] == "failed" and rep["details"]["diagnosis"]["criterion_met"] is False
    status, sweep = run(["sweep", "--dataset", "mnist", "--profile", "tiny", "--selection", "fixed"], tmp_path, "s.json")
    assert status == 3 and sweep["failed"] == [0, 1] and all(r["status"] == "failed" for r in sweep["classes"])


# ----------------------------------------------------------------------------- MNIST end to end
def shipped(dataset: str, profile: str) -> bool:
    from mnemo_tutorial.training.checkpoints import shipped_models

    return any(m["dataset"] == dataset and m["profile"] == profile and m["seed"] == 0 for m in shipped_models())


@pytest.fixture
def fresh_root(monkeypatch, tmp_path, mnist_mirror):
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MNEMO_DEVICE", "cpu")
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    return tmp_path / "data"


def test_forget_two_digits_on_mnist(fresh_root, tmp_path, capsys):
    """A fresh data root: the shipped quick model is loaded (not trained) and the report says so."""
    status, rep = run(["forget", "--dataset", "mnist", "--forget", "3,8", "--profile", "quick"], tmp_path)
    out = capsys.readouterr().out
    assert status == 0 and rep["forget"] == [3, 8] and rep["profile"] == "quick" and rep["device"] == "cpu"
    if shipped("mnist", "quick"):
        assert rep["model_source"] == "pretrained" and rep["model"].startswith("loaded the pretrained model")
        assert not (fresh_root / "checkpoints").exists() or not any((fresh_root / "checkpoints").iterdir())
    assert rep["before"]["accuracy"] >= 97.0
    assert rep["after"]["E_F"] >= 99.5 and rep["after"]["A_R"] >= 95.9
    assert rep["after"]["per_class"][3] <= 0.5 and rep["after"]["per_class"][8] <= 0.5
    assert "E_F" in out and rep["model"] in out


def test_sweep_of_the_mnist_quick_profile_meets_its_targets(fresh_root, tmp_path):
    status, rep = run(["sweep", "--dataset", "mnist", "--profile", "quick"], tmp_path)
    assert status == 0 and [r["forget"] for r in rep["classes"]] == list(range(10))
    assert min(r["E_F"] for r in rep["classes"]) == 100.0
    assert min(r["A_R"] for r in rep["classes"]) >= 97.5
    assert rep["model_source"] == ("pretrained" if shipped("mnist", "quick") else "trained")
