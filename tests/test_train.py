import json
import warnings
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.settings import DataFree
from mnemo_tutorial.env import Precision
from mnemo_tutorial.training import checkpoints, loop
from mnemo_tutorial.training.checkpoints import (
    checkpoint_key,
    file_sha256,
    initial_model,
    save_checkpoint,
    shipped_models,
    train_or_load,
)
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.loop import train_model
from mnemo_tutorial.training.profiles import (
    ForgetSettings,
    Profile,
    SweepSettings,
    get_profile,
    register_profile,
)


@pytest.fixture(autouse=True)
def _registry_restored(monkeypatch):
    """Profiles registered by a test are gone after it (other tests see the built-in registry)."""
    from mnemo_tutorial.training import profiles

    monkeypatch.setattr(profiles, "_SETTINGS", dict(profiles._SETTINGS))


def tiny_data(n=120, dim=(1, 4, 4), classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    centers = torch.rand(classes, *dim, generator=g)
    x = (centers[y] + 0.05 * torch.randn(n, *dim, generator=g)).clamp(0, 1)
    return ImageData("tiny", x, y, x[:30], y[:30], [str(c) for c in range(classes)])


def tiny_profile(**kw):
    base = Profile(name="quick", dataset="tiny", model="mlp", epochs=2, batch_size=32, optimizer="adam",
                   lr=1e-2, momentum=0.0, weight_decay=0.0, schedule="cosine", t_mix=0.2,
                   model_kwargs={"in_features": 16, "hidden": 8})
    return base.replace(**kw)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def no_shipped(monkeypatch, tmp_path):
    """An empty shipped-models folder, so that only the cache and training are in play."""
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path / "no-shipped")
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)


def busy_batches(monkeypatch, cpu=0.02, sleep=0.01) -> list[float]:
    """Every training batch (it passes through MnemonicCodes.mix_batch) first spends ``cpu``
    seconds of CPU and ``sleep`` seconds idle; -> the wall seconds each batch spent so."""
    spent, original = [], MnemonicCodes.mix_batch

    def mix_batch(self, *args, **kwargs):
        w0, c0 = time.perf_counter(), time.process_time()
        while time.process_time() - c0 < cpu:
            pass
        time.sleep(sleep)
        spent.append(time.perf_counter() - w0)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MnemonicCodes, "mix_batch", mix_batch)
    return spent


def test_cache_round_trip_and_key(tmp_path, no_shipped, monkeypatch):
    data = tiny_data()
    prof = tiny_profile()
    batches = busy_batches(monkeypatch)
    t0 = time.perf_counter()
    first = train_or_load(prof, data, seed=1, root=tmp_path, progress=False)
    outer = time.perf_counter() - t0
    assert first.source == "trained" and not first.from_cache and first.checkpoint.exists()
    assert first.key == checkpoint_key(prof, 1, data) and first.key in first.checkpoint.name
    assert len(first.history) == 2 and first.precision == "float32"
    # the recorded time is the training loop's: it holds every batch (2 epochs of 4 here) and
    # lies within the call the test timed
    assert len(batches) == 8 and sum(batches) <= first.train_seconds <= outer, (batches, outer)
    batches.clear()
    again = train_or_load(prof, data, seed=1, root=tmp_path, progress=False)
    assert not batches  # loaded, not trained
    assert again.source == "cache" and again.from_cache and again.train_seconds == first.train_seconds
    assert again.describe() == f"loaded the cached model (recorded: trained in {first.train_seconds:.0f} s on {first.trained_on})"
    assert first.describe() == f"trained in {first.train_seconds:.0f} s on {first.trained_on}"
    assert torch.equal(again.codes.codes, first.codes.codes) and same_weights(first.model, again.model)
    keys = {checkpoint_key(prof, 1, data), checkpoint_key(prof, 2, data),
            checkpoint_key(prof.replace(epochs=3), 1, data), checkpoint_key(prof.replace(t_mix=0.3), 1, data),
            checkpoint_key(prof.replace(lr=0.1), 1, data), checkpoint_key(prof.replace(augment=True), 1, data),
            checkpoint_key(prof.replace(model_kwargs={"in_features": 16, "hidden": 9}), 1, data)}
    assert len(keys) == 7
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_loaded_model_reports_the_training_time_stored_with_it(tmp_path, no_shipped):
    # the time of the run that trained it, whatever loading takes: a checkpoint edited to
    # say 4321 s is reported as 4321 s
    data, prof = tiny_data(), tiny_profile()
    path = train_or_load(prof, data, seed=1, root=tmp_path, progress=False).checkpoint
    state = torch.load(path, weights_only=True)
    torch.save({**state, "train_seconds": 4321.0}, path)
    got = train_or_load(prof, data, seed=1, root=tmp_path, progress=False)
    assert got.source == "cache" and got.train_seconds == 4321.0
    assert got.describe().startswith("loaded the cached model (recorded: trained in 4321 s on ")


def test_forgetting_settings_never_change_the_key():
    # defect: paper_lambdas (a forgetting setting) used to be hashed, so changing it retrained
    data = tiny_data()
    prof = tiny_profile(name="keyed")
    register_profile(prof, ForgetSettings(paper_lambdas=(1e-3, 10.0)), SweepSettings((0,)))
    before = checkpoint_key(get_profile("tiny", "keyed"), 0, data)
    register_profile(prof, ForgetSettings(paper_lambdas=(1e-5, 1e4), params=("fc2.weight",), selection=DataFree(2.0)),
                     SweepSettings((0, 1, 2)))
    assert checkpoint_key(get_profile("tiny", "keyed"), 0, data) == before
    assert checkpoint_key(get_profile("tiny", "keyed").replace(epochs=3), 0, data) != before


def _random_state():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _assert_same_state(before, after):
    assert torch.equal(before[0], after[0])
    assert before[1][0] == after[1][0] and np.array_equal(before[1][1], after[1][1]) and before[1][2:] == after[1][2:]
    assert before[2] == after[2]


def test_training_leaves_the_callers_random_state(tmp_path, no_shipped):
    # defect: train_model/train_or_load called seed_everything, reseeding the caller's RNGs
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = _random_state()
    a = train_or_load(tiny_profile(), tiny_data(), seed=3, root=tmp_path / "a", progress=False)
    _assert_same_state(before, _random_state())
    model = initial_model(tiny_profile(), 3, seed=5)
    codes = MnemonicCodes.random(3, (1, 4, 4), seed=5)
    train_model(model, tiny_data().x_train, tiny_data().y_train, codes, tiny_profile(), seed=5, progress=False)
    _assert_same_state(before, _random_state())
    b = train_or_load(tiny_profile(), tiny_data(), seed=3, root=tmp_path / "b", progress=False)
    assert same_weights(a.model, b.model) and torch.equal(a.codes.codes, b.codes.codes)
    c = train_or_load(tiny_profile(), tiny_data(), seed=4, root=tmp_path / "c", progress=False)
    assert not same_weights(a.model, c.model)


@pytest.mark.parametrize("precision", [Precision("bfloat16", torch.bfloat16, False),
                                       Precision("float16", torch.float16, True)])
def test_mixed_precision_paths_train(monkeypatch, precision):
    # the GPU paths (autocast, and the gradient scaler for float16) run here on the CPU
    monkeypatch.setattr(loop, "training_precision", lambda device_type: precision)
    data = tiny_data()
    model = initial_model(tiny_profile(), 3)
    start = [p.detach().clone() for p in model.parameters()]
    result = train_model(model, data.x_train, data.y_train, MnemonicCodes.random(3, (1, 4, 4)),
                         tiny_profile(epochs=3), progress=False)
    assert result.precision == precision.name and all(np.isfinite(h["loss"]) for h in result.history)
    assert all(not torch.equal(a, b) for a, b in zip(start, model.parameters()))
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="epochs"):
        train_or_load(tiny_profile(epochs=0), tiny_data(), use_cache=False, progress=False)
    with pytest.raises(ValueError, match="seed"):
        train_or_load(tiny_profile(), tiny_data(), seed=-1, use_cache=False, progress=False)
    with pytest.raises(ValueError, match="profile"):
        train_or_load("quick", tiny_data(), use_cache=False, progress=False)


def test_checkpoints_load_with_weights_only(tmp_path, no_shipped):
    # a checkpoint holding an arbitrary pickled object is refused (torch.load(weights_only=True))
    data, prof = tiny_data(), tiny_profile()
    path = checkpoints.cache_path(prof, data, checkpoint_key(prof, 0, data), tmp_path)
    path.parent.mkdir(parents=True)
    torch.save({"format": checkpoints.CHECKPOINT_FORMAT, "key": checkpoint_key(prof, 0, data), "evil": Path("x")}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|weights_only"):
        train_or_load(prof, data, root=tmp_path, progress=False)


def test_a_stale_cache_file_is_retrained(tmp_path, no_shipped):
    data, prof = tiny_data(), tiny_profile()
    path = checkpoints.cache_path(prof, data, checkpoint_key(prof, 0, data), tmp_path)
    path.parent.mkdir(parents=True)
    torch.save({"format": 2, "model": {}}, path)
    assert train_or_load(prof, data, root=tmp_path, progress=False).source == "trained"
    assert train_or_load(prof, data, root=tmp_path, progress=False).source == "cache"


def _ship(tmp_path, monkeypatch, prof, data, seed=0):
    """Train a tiny model and ship it from a temporary pretrained folder."""
    shipped = tmp_path / "shipped"
    result = train_or_load(prof, data, seed=seed, use_cache=False, pretrained=False, progress=False)
    path = save_checkpoint(result, prof, seed, shipped / "tiny-quick-seed0.pt")
    entry = {"file": path.name, "key": result.key, "sha256": file_sha256(path)}
    (shipped / "manifest.json").write_text(json.dumps({"format": 1, "models": [entry]}))
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", shipped)
    return result


def test_a_shipped_model_is_used_when_there_is_no_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    data, prof = tiny_data(), tiny_profile()
    shipped = _ship(tmp_path, monkeypatch, prof, data)
    got = train_or_load(prof, data, root=tmp_path / "root", progress=False)
    assert got.source == "pretrained" and got.from_cache and same_weights(got.model, shipped.model)
    assert got.describe().startswith("loaded the pretrained model (recorded: trained in ")
    assert got.train_seconds == shipped.train_seconds and got.trained_on == shipped.trained_on
    # another seed has another key: trained
    assert train_or_load(prof, data, seed=1, root=tmp_path / "root", progress=False).source == "trained"
    # the cache comes first
    cached = train_or_load(prof, data, seed=1, root=tmp_path / "root", progress=False)
    assert cached.source == "cache"


def test_the_key_names_the_data_set_not_the_copy_it_was_read_from():
    import dataclasses

    data, prof = tiny_data(), tiny_profile()
    key = checkpoint_key(prof, 0, data)
    # another source or other notes (a download instead of the mirror, another file format)
    other_copy = dataclasses.replace(data, source="download", notes={"format": "another copy"})
    assert checkpoint_key(prof, 0, other_copy) == key
    # what the data set is: its classes, its split sizes, its preprocessing
    for changed in (dataclasses.replace(data, classes=["a", "b", "c"]),
                    dataclasses.replace(data, x_test=data.x_test[:20], y_test=data.y_test[:20]),
                    dataclasses.replace(data, preprocessing="resized to 2x2"),
                    dataclasses.replace(data, name="tiny2")):
        assert checkpoint_key(prof, 0, changed) != key


def test_a_shipped_model_is_measured_on_the_readers_data(tmp_path, monkeypatch):
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    data, prof = tiny_data(), tiny_profile()
    shipped = _ship(tmp_path, monkeypatch, prof, data)
    measured = float((shipped.model(data.x_test).argmax(1) == data.y_test).double().mean() * 100)
    manifest = tmp_path / "shipped" / "manifest.json"
    for recorded, warns in ((measured + 0.5, False), (measured - 3.0, True)):
        entries = json.loads(manifest.read_text())
        entries["models"][0]["test_accuracy"] = recorded
        manifest.write_text(json.dumps(entries))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = train_or_load(prof, data, use_cache=False, progress=False)
        said = [str(w.message) for w in caught if "copy of the test set" in str(w.message)]
        assert got.recorded_accuracy == recorded and abs(got.measured_accuracy - measured) < 1e-9
        assert bool(said) == warns, said
        assert f"recorded {recorded:.2f} %, measured on this data {measured:.2f} %" in got.describe()
    assert "+3.00 points" in said[0] and "MNEMO_RETRAIN" in said[0]


def test_retrain_skips_cache_and_shipped_models(tmp_path, monkeypatch):
    data, prof = tiny_data(), tiny_profile()
    _ship(tmp_path, monkeypatch, prof, data)
    monkeypatch.setenv("MNEMO_RETRAIN", "1")
    assert train_or_load(prof, data, root=tmp_path / "root", progress=False).source == "trained"
    assert train_or_load(prof, data, root=tmp_path / "root", progress=False).source == "trained"
    monkeypatch.setenv("MNEMO_RETRAIN", "0")
    assert train_or_load(prof, data, root=tmp_path / "root", progress=False).source == "cache"
    assert train_or_load(prof, data, root=tmp_path / "root", retrain=True, progress=False).source == "trained"
    monkeypatch.setenv("MNEMO_RETRAIN", "perhaps")
    with pytest.raises(ValueError, match="MNEMO_RETRAIN"):
        train_or_load(prof, data, root=tmp_path / "root", progress=False)


def test_a_shipped_model_with_a_wrong_sha256_is_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    data, prof = tiny_data(), tiny_profile()
    _ship(tmp_path, monkeypatch, prof, data)
    path = tmp_path / "shipped" / "tiny-quick-seed0.pt"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.warns(UserWarning, match="sha256"):
        got = train_or_load(prof, data, use_cache=False, progress=False)
    assert got.source == "trained"


# ---------------------------------------------------------------------------------------
# The models shipped with the package
# ---------------------------------------------------------------------------------------
MIRROR_FILES = {"mnist": "mnist", "cifar10": "cifar10-jpeg.tar.gz", "faces": "att_faces.tar.gz"}


def _mirror_has(dataset):
    mirror = os.environ.get("MNEMO_MIRROR")
    return bool(mirror) and (Path(mirror) / MIRROR_FILES.get(dataset, dataset)).exists()


def test_the_manifest_lists_every_shipped_file():
    entries = shipped_models()
    assert {e["dataset"] for e in entries} == {"mnist", "cifar10", "faces"}
    files = {p.name for p in checkpoints.PRETRAINED_DIR.glob("*.pt")}
    assert files == {e["file"] for e in entries}
    assert sum((checkpoints.PRETRAINED_DIR / f).stat().st_size for f in files) <= 10 * 2**20
    for e in entries:
        assert file_sha256(checkpoints.PRETRAINED_DIR / e["file"]) == e["sha256"], e["file"]
        assert e["command"] and e["machine"] and e["train_seconds"] > 0


@pytest.mark.parametrize("entry", [e for e in shipped_models() if "retrained_without" not in e],
                         ids=lambda e: e["file"])  # retrained ones: tests/test_baselines.py
def test_a_shipped_model_matches_its_profile_and_accuracy(entry, tmp_path, monkeypatch):
    if not _mirror_has(entry["dataset"]):
        pytest.skip(f"no {entry['dataset']} in the data mirror (MNEMO_MIRROR)")
    from mnemo_tutorial.evaluation.metrics import evaluate
    from mnemo_tutorial.training.data import load_dataset

    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    data = load_dataset(entry["dataset"])
    profile = get_profile(entry["dataset"], entry["profile"])
    assert checkpoint_key(profile, entry["seed"], data) == entry["key"]
    got = train_or_load(profile, data, seed=entry["seed"], device="cpu", use_cache=False, progress=False)
    assert got.source == "pretrained" and got.key == entry["key"]
    accuracy = evaluate(got.model, data.x_test, data.y_test, num_classes=data.num_classes)["accuracy"]
    # the same weights on another CPU may flip one near-tie prediction, no more
    assert abs(accuracy - entry["test_accuracy"]) <= 100.0 / entry["n_test"] + 1e-9, (accuracy, entry["test_accuracy"])
    # the book's models keep their codes with their classes: the record made at load (the
    # training data at hand) lets forget step on every class
    record = got.codes.alignment
    assert record is not None and record.misaligned(range(data.num_classes)) == [], record.describe()


def test_random_crop_flip_is_a_shifted_possibly_flipped_crop():
    from mnemo_tutorial.training.augment import random_crop_flip

    x = torch.arange(2 * 2 * 5 * 6, dtype=torch.float32).view(2, 2, 5, 6) + 1  # no zero pixel inside
    copy = x.clone()
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape and torch.equal(x, copy)
    padded = torch.nn.functional.pad(x, (2,) * 4)
    for i in range(2):
        crops = [padded[i, :, dy:dy + 5, dx:dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops), i
    again = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert torch.equal(out, again)
    many = random_crop_flip(torch.rand(4000, 1, 3, 3) + 1, torch.Generator().manual_seed(1), padding=1)
    shifted = float((many == 0).any(dim=(1, 2, 3)).float().mean())
    assert abs(shifted - 8 / 9) < 0.03  # 8 of the 9 offsets of padding 1 reach into the zero border
    row = torch.arange(1.0, 4.0).view(1, 1, 1, 3).expand(4000, 1, 1, 3)
    flipped = float((random_crop_flip(row, torch.Generator().manual_seed(2), padding=0)[:, 0, 0, 0] == 3).float().mean())
    assert abs(flipped - 0.5) < 0.03
    assert torch.equal(random_crop_flip(x[:, :, :, :1], torch.Generator().manual_seed(0), padding=0), x[:, :, :, :1])
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(x, torch.Generator(), padding=-1)
    with pytest.raises(ValueError, match="x must be"):
        random_crop_flip(x[0], torch.Generator())


# ---------------------------------------------------------------------------------------
# One process keeps its keys and weights; streaming data mixes codes as the in-memory path
# ---------------------------------------------------------------------------------------
def test_single_process_keys_are_unchanged():
    # the key of one process is the one shipped models were made with; the world size enters above 1
    data, prof = tiny_data(), tiny_profile()
    assert checkpoint_key(prof, 1, data) == checkpoint_key(prof, 1, data, world_size=1) == "18d265d05ccbb5b2"
    assert len({checkpoint_key(prof, 1, data, world_size=w) for w in (1, 2, 4)}) == 3
    with pytest.raises(ValueError, match="world_size"):
        checkpoint_key(prof, 1, data, world_size=0)


def _reference_training(prof, data, seed):
    """The single-process loop written out: one generator draws each epoch's permutation,
    then each batch's code mixing; AdamW/Adam steps (PyTorch's fused form) with the per-step
    cosine schedule."""
    import math

    model = initial_model(prof, 3, seed)
    codes = MnemonicCodes.random(3, (1, 4, 4), seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=prof.lr, fused=True)
    total = math.ceil(len(data.y_train) / prof.batch_size) * prof.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(prof.epochs):
            perm = torch.randperm(len(data.y_train), generator=gen)
            for start in range(0, len(perm), prof.batch_size):
                idx = perm[start:start + prof.batch_size]
                xb, _ = codes.mix_batch(data.x_train[idx], data.y_train[idx], prof.t_mix, gen)
                loss = torch.nn.functional.cross_entropy(model(xb).float(), data.y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return model


def test_single_process_training_is_the_plain_loop():
    data, prof = tiny_data(n=130), tiny_profile(epochs=3)
    got = train_model(initial_model(prof, 3, 4), data.x_train, data.y_train, MnemonicCodes.random(3, (1, 4, 4), seed=4),
                      prof, seed=4, progress=False)
    assert got.world_size == 1 and same_weights(got.model, _reference_training(prof, data, 4))


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_adam_steps_in_pytorchs_fused_form_where_the_parameters_allow(name):
    opt = loop._optimizer(initial_model(tiny_profile(), 3, 0), tiny_profile(optimizer=name))
    assert bool(opt.defaults.get("fused")) == (name != "sgd")
    elsewhere = initial_model(tiny_profile(), 3, 0).to("meta")  # a device without the fused form
    assert not loop._optimizer(elsewhere, tiny_profile(optimizer=name)).defaults.get("fused")


def _record_mixing(monkeypatch):
    """Every batch that MnemonicCodes.mix_batch returns during training: (mixed x, labels, mask)."""
    seen = []
    original = MnemonicCodes.mix_batch

    def recording(self, x, y, t_mix, generator=None):
        out, mask = original(self, x, y, t_mix, generator)
        seen.append((out.clone(), y.clone(), mask.clone()))
        return out, mask

    monkeypatch.setattr(MnemonicCodes, "mix_batch", recording)
    return seen


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_and_in_memory_paths_mix_codes_identically(monkeypatch, workers):
    from torch.utils.data import TensorDataset

    from mnemo_tutorial.training.loop import train_from_dataset

    data, prof = tiny_data(n=100), tiny_profile(epochs=2, t_mix=0.4)
    seen = _record_mixing(monkeypatch)
    a = train_model(initial_model(prof, 3, 2), data.x_train, data.y_train, MnemonicCodes.random(3, (1, 4, 4), seed=2),
                    prof, seed=2, progress=False)
    in_memory, seen[:] = list(seen), []
    b = train_from_dataset(initial_model(prof, 3, 2), TensorDataset(data.x_train, data.y_train),
                           MnemonicCodes.random(3, (1, 4, 4), seed=2), prof, seed=2, progress=False, workers=workers)
    assert len(in_memory) == len(seen) == 2 * 4  # 2 epochs of ceil(100 / 32) batches
    for (xa, ya, ma), (xb, yb, mb) in zip(in_memory, seen):
        assert torch.equal(ya, yb) and torch.equal(ma, mb) and torch.equal(xa, xb)
    assert 0 < sum(int(m.sum()) for _, _, m in seen) < 200  # some samples were swapped, not all
    assert same_weights(a.model, b.model) and a.history == b.history


def test_the_epoch_batches_of_two_ranks_split_the_global_batches():
    from mnemo_tutorial.training.loop import EpochBatches

    one = list(EpochBatches(11, 4, torch.Generator().manual_seed(3)))
    ranks = [list(EpochBatches(11, 2, torch.Generator().manual_seed(3), rank=r, world=2)) for r in range(2)]
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(3)).tolist()
    assert sum(one, []) == perm and [len(b) for b in one] == [4, 4, 3]
    assert len(ranks[0]) == len(ranks[1]) == len(EpochBatches(11, 2, torch.Generator(), rank=1, world=2)) == 3
    # step k of both ranks together is the one process's batch k (less the sample left out)
    for k in range(3):
        assert sorted(ranks[0][k] + ranks[1][k]) == sorted(perm[:10][4 * k:4 * k + 4])
    with pytest.raises(ValueError, match="at least one sample per process"):
        EpochBatches(1, 1, torch.Generator(), rank=0, world=2)


def test_streaming_bad_arguments():
    from torch.utils.data import IterableDataset, TensorDataset

    from mnemo_tutorial.training.loop import train_from_dataset

    class Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(1, 4, 4), 0

    model, codes, prof = initial_model(tiny_profile(), 3), MnemonicCodes.random(3, (1, 4, 4)), tiny_profile()
    with pytest.raises(ValueError, match="must have a length"):
        train_from_dataset(model, Stream(), codes, prof, progress=False)
    with pytest.raises(ValueError, match="at least one sample"):
        train_from_dataset(model, TensorDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long)), codes, prof)
    with pytest.raises(ValueError, match="workers"):
        train_from_dataset(model, TensorDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)), codes, prof, workers=-1)
