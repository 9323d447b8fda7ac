"""The machinery of scripts/robustness.py on a small synthetic dataset (the real runs train on
MNIST / CIFAR-10 and are not part of the test suite)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.models import MODELS

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("robustness", ROOT / "scripts" / "robustness.py")
robustness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(robustness)


def blobs(classes=3, shape=(1, 8, 8), n_train=240, n_test=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(classes, *shape, generator=g)
    def split(n):
        y = torch.arange(n) % classes
        return (protos[y] + 0.05 * torch.randn(n, *shape, generator=g)).clamp(0, 1), y
    (xt, yt), (xs, ys) = split(n_train), split(n_test)
    return ImageData(name="mnist", x_train=xt, y_train=yt, x_test=xs, y_test=ys, classes=[str(c) for c in range(classes)])


@pytest.mark.parametrize("arch", robustness.ARCHS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_architectures_build_and_are_outside_the_zoo(arch, shape):
    assert arch not in MODELS
    torch.manual_seed(0)
    model = robustness.build(arch, shape, 10).eval()
    assert model(torch.rand(2, *shape)).shape == (2, 10)
    kinds = {type(m).__name__ for m in model.modules()}
    expected = {"bn_cnn": "BatchNorm2d", "plain_cnn": "Conv2d", "ln_mlp": "LayerNorm", "mixer": "LayerNorm",
                "res_gn_cnn": "GroupNorm", "drop_cnn": "Dropout", "vit": "Attention"}[arch]
    assert expected in kinds
    if arch == "drop_cnn":
        assert "SiLU" in kinds and not kinds & {"BatchNorm2d", "GroupNorm", "LayerNorm"}
    if arch == "plain_cnn":
        assert not kinds & {"BatchNorm2d", "GroupNorm", "LayerNorm"}


def test_suite_writes_every_class_and_reuses_the_cache(tmp_path):
    argv = ["--archs", "ln_mlp,bn_cnn", "--epochs", "2", "--train-samples", "240", "--test-samples", "90",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r.json")]
    lines = []
    first = robustness.main(argv, data=blobs(), log=lines.append)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert list(saved["results"]) == ["ln_mlp", "bn_cnn"]
    for arch, res in saved["results"].items():
        assert res["source"] == "trained" and [r["class"] for r in res["classes"]] == [0, 1, 2]
        for r in res["classes"]:
            assert r["status"] in ("ok", "failed") and r["criterion_met"] == (r["status"] == "ok")
            assert r["verification"] is None
            assert r["A_R_drop"] == pytest.approx(r["A_R_before"] - r["A_R"])
            assert r["target_met"] == (r["E_F"] >= 99.0 and r["A_R_drop"] <= 2.0)
        s = res["summary"]
        assert s["status_ok"] == sum(r["status"] == "ok" for r in res["classes"])
        assert s["failed_classes"] == [r["class"] for r in res["classes"] if r["status"] != "ok"]
    assert len(lines) == 3 and lines[0].startswith("ln_mlp")
    again = robustness.main(argv, data=blobs(), log=lambda _: None)
    for arch in first["results"]:
        assert again["results"][arch]["source"] == "cache"
        assert again["results"][arch]["classes"] == first["results"][arch]["classes"] or all(
            a["E_F"] == b["E_F"] and a["A_R"] == b["A_R"] and a["lambda1"] == b["lambda1"]
            for a, b in zip(again["results"][arch]["classes"], first["results"][arch]["classes"]))
    retrained = robustness.main(argv[:-2] + ["--retrain", "--out", str(tmp_path / "r2.json")], data=blobs(), log=lambda _: None)
    assert retrained["results"]["bn_cnn"]["source"] == "trained"


def test_split_is_a_random_subset_of_class_sorted_data():
    data = blobs(n_train=300, n_test=90)
    order = torch.argsort(data.y_train, stable=True)  # sorted by class, as the CIFAR-10 files are
    data.x_train, data.y_train = data.x_train[order], data.y_train[order]
    part, _ = robustness.split(data, 30, 30, seed=1)
    assert sorted(set(part.y_train.tolist())) == [0, 1, 2] and sorted(set(part.y_test.tolist())) == [0, 1, 2]


@pytest.mark.parametrize("argv, word", [
    (["--archs", "resnet"], "--archs"), (["--archs", ","], "--archs"), (["--epochs", "0"], "--epochs"),
    (["--dataset", "faces"], "--dataset"),
])
def test_bad_arguments_exit_2(argv, word, capsys):
    with pytest.raises(SystemExit) as err:
        robustness.parse_args(argv)
    assert err.value.code == 2 and word in capsys.readouterr().err


def test_head_step_moves_only_the_last_linear_layer(tmp_path):
    torch.manual_seed(0)
    model = robustness.build("mixer", (1, 8, 8), 3)
    from mnemo_tutorial.core.step import head_params

    assert head_params(model) == ("fc.weight", "fc.bias")
    out = robustness.main(["--archs", "plain_cnn", "--epochs", "2", "--train-samples", "240", "--test-samples", "90",
                           "--cache", "", "--step", "head", "--out", str(tmp_path / "h.json")], data=blobs(), log=lambda _: None)
    for r in out["results"]["plain_cnn"]["classes"]:
        assert set(r["moved"]) <= {"11.weight", "11.bias"} and r["moved_count"] >= 1  # the second Linear


def test_verify_samples_come_from_unused_training_data(tmp_path):
    data = blobs(n_train=300)
    part, unused = robustness.split(data, 240, 90, seed=0)
    assert len(unused) == 60 and len(part.y_train) == 240
    assert not set(unused.tolist()) & {int(i) for i in torch.randperm(300, generator=torch.Generator().manual_seed(0))[:240]}
    x, y = robustness.verify_split(data, unused, 5)
    assert len(y) == 15 and sorted(set(y.tolist())) == [0, 1, 2]
    assert all(not any(torch.equal(a, b) for b in part.x_train) for a in x)  # never trained on
    assert robustness.verify_split(data, unused[:0], 5) is None and robustness.verify_split(data, unused, 0) is None
    out = robustness.main(["--archs", "ln_mlp", "--epochs", "2", "--train-samples", "240", "--test-samples", "90",
                           "--cache", "", "--verify-per-class", "5", "--out", str(tmp_path / "v.json")],
                          data=data, log=lambda _: None)
    for r in out["results"]["ln_mlp"]["classes"]:
        assert r["verification"]["samples"] == 15
        assert r["status"] == ("ok" if r["criterion_met"] and r["verification"]["ok"] else "failed")


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", robustness.ARCHS)
def test_same_seed_gives_bit_identical_weights(arch):
    # two trainings with one seed: equal parameters and buffers (batch-norm running statistics
    # and batch counters included), bit for bit; another seed gives other weights
    from mnemo_tutorial.training.profiles import get_profile

    data = blobs(shape=(3, 8, 8))
    profile = get_profile("cifar10", "quick").replace(epochs=2)  # SGD, cosine, crop + flip, t_mix 0.3
    runs = [_state(robustness.train_arch(arch, data, profile, seed, None, False)["model"]) for seed in (3, 3, 4)]
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0]), [k for k in runs[0] if not torch.equal(runs[0][k], runs[1][k])]
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])
    if arch == "bn_cnn":
        assert any(k.endswith("running_var") for k in runs[0])


def test_same_seed_gives_bit_identical_weights_for_the_zoos_batch_norm_resnet():
    from mnemo_tutorial.core.codes import MnemonicCodes
    from mnemo_tutorial.training.checkpoints import initial_model, profile_augment
    from mnemo_tutorial.training.loop import train_model
    from mnemo_tutorial.training.profiles import get_profile

    data = blobs(shape=(3, 8, 8))
    profile = get_profile("cifar10", "quick").replace(epochs=2, model_kwargs={"widths": (4, 8), "blocks": (1, 1)})
    states = []
    for seed in (5, 5):
        model = initial_model(profile, 3, seed=seed)
        codes = MnemonicCodes.random(3, (3, 8, 8), seed=seed)
        train_model(model, data.x_train, data.y_train, codes, profile, seed=seed, device="cpu",
                    augment=profile_augment(profile), progress=False)
        states.append(_state(model))
    assert any("bn" in k and k.endswith("running_mean") for k in states[0])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def busy_training(monkeypatch, cpu=0.03, sleep=0.02) -> list[tuple[float, float]]:
    """Every training batch (it passes through MnemonicCodes.mix_batch, also with t_mix 0)
    first spends ``cpu`` seconds of CPU and ``sleep`` seconds idle; -> the list of (wall, CPU)
    seconds each batch spent so, as measured here."""
    import time

    from mnemo_tutorial.core.codes import MnemonicCodes

    spent, original = [], MnemonicCodes.mix_batch

    def mix_batch(self, *args, **kwargs):
        w0, c0 = time.perf_counter(), time.process_time()
        while time.process_time() - c0 < cpu:
            pass
        time.sleep(sleep)
        spent.append((time.perf_counter() - w0, time.process_time() - c0))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MnemonicCodes, "mix_batch", mix_batch)
    return spent


def timed_calls(monkeypatch, module, name: str) -> list[float]:
    """Wall seconds of every call of ``module.name`` (patched in place)."""
    import time

    spans, original = [], getattr(module, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spans.append(time.perf_counter() - t0)

    monkeypatch.setattr(module, name, timed)
    return spans


def test_json_names_command_version_machine_date_and_times(tmp_path, monkeypatch):
    import time

    import mnemo_tutorial
    from mnemo_tutorial.env import cpu_model
    from mnemo_tutorial.training import loop

    argv = ["--archs", "ln_mlp", "--epochs", "1", "--train-samples", "120", "--test-samples", "30",
            "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "p.json")]
    batches, trainings = busy_training(monkeypatch), timed_calls(monkeypatch, loop, "train_model")
    w0, c0 = time.perf_counter(), time.process_time()
    robustness.main(argv, data=blobs(), log=lambda _: None)
    outer_wall, outer_cpu = time.perf_counter() - w0, time.process_time() - c0
    out = json.loads((tmp_path / "p.json").read_text())
    assert out["command"] == "python scripts/robustness.py " + " ".join(argv)
    assert out["package_version"] == mnemo_tutorial.__version__ and len(out["package_source_hash"]) == 16
    assert out["machine"]["cpu"] == cpu_model() and out["machine"]["torch_threads"] == 1
    assert out["date"][:2] == "20" and out["trained_this_run"] == ["ln_mlp"]
    # the times are this run's, measured around the work they name: training holds every batch
    # and lies within the train_model call, which lies within the architecture's time, within
    # the run's wall time, within what the test measured around main()
    res = out["results"]["ln_mlp"]
    assert len(trainings) == 1 and batches, (trainings, batches)
    busy_wall, busy_cpu = sum(w for w, _ in batches), sum(c for _, c in batches)
    assert out["train_seconds"] == res["train_seconds"]
    assert busy_wall <= res["train_seconds"] <= trainings[0] <= res["seconds"], (busy_wall, res)
    assert res["seconds"] <= out["wall_seconds"] <= outer_wall, (out["wall_seconds"], outer_wall)
    assert busy_cpu <= out["cpu_seconds"] <= outer_cpu, (busy_cpu, out["cpu_seconds"], outer_cpu)
    # a cached model reports the training time stored with it, not the time spent loading it
    (cached,) = (tmp_path / "c").glob("*.pt")
    state = torch.load(cached, weights_only=True)
    assert state["train_seconds"] == res["train_seconds"]
    torch.save({**state, "train_seconds": 4321.0}, cached)
    batches.clear()
    w0 = time.perf_counter()
    again = robustness.main(argv, data=blobs(), log=lambda _: None)
    assert again["trained_this_run"] == [] and len(trainings) == 1 and not batches
    assert again["results"]["ln_mlp"]["train_seconds"] == again["train_seconds"] == 4321.0
    assert again["wall_seconds"] <= time.perf_counter() - w0


def test_a_model_whose_training_diverged_is_flagged(tmp_path, monkeypatch):
    real = robustness.train_arch

    def nan_weights(*args, **kwargs):
        out = real(*args, **kwargs)
        with torch.no_grad():
            next(out["model"].parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(robustness, "train_arch", nan_weights)
    lines = []
    out = robustness.main(["--archs", "ln_mlp", "--epochs", "1", "--train-samples", "120", "--test-samples", "30",
                           "--cache", "", "--out", str(tmp_path / "d.json")], data=blobs(), log=lines.append)
    res = out["results"]["ln_mlp"]
    assert res["training_diverged"] and "DIVERGED" in lines[0]
    assert all(r["status"] == "failed" for r in res["classes"])  # forget does not report success either


def test_training_overrides_change_the_cache_key(tmp_path, monkeypatch):
    monkeypatch.setattr(robustness, "TRAINING_OVERRIDES", {("ln_mlp", "mnist"): {"lr": 0.02}})
    argv = ["--archs", "ln_mlp", "--epochs", "1", "--train-samples", "120", "--test-samples", "30",
            "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o.json")]
    out = robustness.main(argv, data=blobs(), log=lambda _: None)
    assert out["results"]["ln_mlp"]["training_overrides"] == {"lr": 0.02}
    monkeypatch.setattr(robustness, "TRAINING_OVERRIDES", {})
    again = robustness.main(argv, data=blobs(), log=lambda _: None)
    assert again["results"]["ln_mlp"]["source"] == "trained" and again["results"]["ln_mlp"]["training_overrides"] == {}
