"""torch.distributed on CPU processes (gloo): sharding, the weighted Fisher sums with the samples
split over 2 and 3 ranks equal to the single-process result (and bad arguments refused on every
rank, without a hang), training with DistributedDataParallel, and the command line under
torchrun (against one process, then forgetting)."""
from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from mnemo_tutorial import distributed
from mnemo_tutorial.core.fisher import grouped_fisher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(fn, world: int, *args, timeout: float = 120.0) -> None:
    """``fn(rank, world, *args)`` in ``world`` processes; fails the test (killing them) past
    ``timeout`` seconds instead of waiting forever on a rank stuck in a collective."""
    ctx = mp.spawn(fn, args=(world, *args), nprocs=world, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
                p.join()
            pytest.fail(f"{world} processes still running after {timeout} s: a rank hangs")


# ----------------------------------------------------------------------- Fisher sums, samples split
N = 7  # not a multiple of 2 or 3


def _model() -> nn.Module:
    """A convolution (torch.func route) and a Linear (outer-product route)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(),
                         nn.Linear(24, 5)).eval()


def _inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(N, 1, 3, 4, generator=g)
    y = torch.arange(N) % 5
    forget = (y == 1) | (y == 3)
    return x, y, torch.stack([forget, ~forget]).double()  # forget's two groups


def _cases() -> dict[str, tuple]:
    """name -> (x, y, weights, normalize, params, dtype)."""
    x, y, two = _inputs()
    f64 = torch.float64
    out = {}
    for normalize in (False, True):
        out[f"two groups, normalize={normalize}"] = (x, y, two, normalize, None, f64)
        out[f"one group per sample, normalize={normalize}"] = (x, y, torch.eye(N), normalize, None,
                                                               f64)
    out["params subset"] = (x, y, two, True, ["0.weight", "3.bias"], f64)
    out["2 samples (an idle rank with 3)"] = (x[:2], y[:2], two[:, :2], True, None, f64)
    out["float32"] = (x, y, two.float(), True, None, None)
    return out


def _bad_cases() -> dict[str, tuple]:
    """name -> (weights, kwargs): arguments that grouped_fisher refuses with a ValueError."""
    _, _, two = _inputs()
    return {
        "unknown param, 1 group": (two[:1], {"params": ["3.weight", "nope"]}),
        "unknown param, 2 groups": (two, {"params": ["nope"]}),
        "a string as params": (two, {"params": "3.weight"}),
        "weights of another length": (two[:, 1:], {}),
    }


class _FailsOnRankZero(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.distributed.get_rank() == 0:
            raise RuntimeError("rank zero's forward fails")
        return self.fc(x.flatten(1))


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                         world_size=world, timeout=datetime.timedelta(seconds=30))
    try:
        assert distributed.active() and distributed.world_size() == world
        model, (x, y, _) = _model(), _inputs()
        # refused before any collective
        for i, (weights, kwargs) in enumerate(_bad_cases().values()):
            try:
                distributed.grouped_fisher_sharded(model, x, y, weights, **kwargs)
            except ValueError as exc:
                Path(f"{out}.bad{i}.{rank}").write_text(str(exc))
        try:  # a failure in one rank's computation: every rank raises, none waits
            distributed.grouped_fisher_sharded(_FailsOnRankZero(), x, y, torch.ones(1, N))
        except RuntimeError as exc:
            Path(f"{out}.failed.{rank}").write_text(str(exc))
        got = {name: distributed.grouped_fisher_sharded(model, x_, y_, w, normalize, params, dtype)
               for name, (x_, y_, w, normalize, params, dtype) in _cases().items()}
        saved = {"fisher": got, "shard": distributed.shard(torch.arange(11))}
        if world == 2:  # the code Fisher of a trained-size MLP, below
            saved["codes"] = distributed.grouped_fisher_sharded(*_codes_case(), normalize=False)
        torch.save(saved, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def max_relative_error(got: list[dict], want: list[dict]) -> float:
    """max |got - want| / max |want| over every group and tensor."""
    return max(float((g[k] - w[k]).abs().max() / w[k].abs().max())
               for g, w in zip(got, want) for k in w)


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory):
    """``run(world)``: the folder where ``world`` processes of :func:`_rank_main` left their
    files, spawned once per world size for the tests of this module."""
    done: dict[int, Path] = {}

    def run(world: int) -> Path:
        if world not in done:
            folder = tmp_path_factory.mktemp(f"gloo{world}")
            _spawn(_rank_main, world, _free_port(), str(folder / "r"))
            done[world] = folder
        return done[world]

    return run


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_fisher_equals_single_process(gloo_run, world):
    tmp_path = gloo_run(world)
    model, (x, y, _) = _model(), _inputs()
    # bad arguments: the single-process ValueError on every rank (and the group stayed in step)
    for i, (weights, kwargs) in enumerate(_bad_cases().values()):
        with pytest.raises(ValueError) as want_error:
            grouped_fisher(model, x, y, weights, **kwargs)
        for r in range(world):
            assert (tmp_path / f"r.bad{i}.{r}").read_text() == str(want_error.value)
    failed = [(tmp_path / f"r.failed.{r}").read_text() for r in range(world)]
    assert failed[0] == "rank zero's forward fails"
    assert all(f"failed on 1 of {world} ranks" in m for m in failed[1:])
    saved = [torch.load(tmp_path / f"r.{r}", weights_only=True) for r in range(world)]
    for name, (x_, y_, w, normalize, params, dtype) in _cases().items():
        want = grouped_fisher(model, x_, y_, w, normalize, params, dtype)
        for r in range(world):
            got = saved[r]["fisher"][name]
            assert len(got) == len(want) == w.shape[0], name
            for got_g, want_g, first in zip(got, want, saved[0]["fisher"][name]):
                names = params or [k for k, _ in model.named_parameters()]
                assert list(got_g) == list(want_g) == names  # model order
                assert all(torch.equal(got_g[k], first[k]) for k in got_g)  # the same on every rank
                for k in want_g:
                    assert got_g[k].dtype == want_g[k].dtype == (dtype or torch.float32), (name, k)
                    assert want_g[k].abs().max() > 0, (name, k)
                    if dtype == torch.float64:
                        torch.testing.assert_close(got_g[k], want_g[k], rtol=1e-12, atol=0)
            if dtype is None:
                assert max_relative_error(got, want) <= 1e-6, name
    if world == 2:  # shard: every rank as many samples, disjoint, together all but the remainder
        shards = [s["shard"] for s in saved]
        assert [len(s) for s in shards] == [5, 5]
        assert sorted(shards[0].tolist() + shards[1].tolist()) == list(range(10))


def test_sample_shards_partition_the_samples_and_every_rank_works():
    for n, world in [(7, 3), (10, 3), (2, 3), (0, 2), (5, 1), (9, 4)]:
        parts = [list(range(n))[distributed._sample_shard(n, r, world)] for r in range(world)]
        assert [i for p in parts for i in p] == list(range(n))  # contiguous blocks, in order
        assert [len(p) for p in parts] == [len(t) for t in torch.arange(n).tensor_split(world)]
    with pytest.raises(ValueError, match="rank must be"):
        distributed._sample_shard(5, 3, 3)
    # forget's two groups over 3 ranks: every rank computes both groups on its own samples,
    # and the parts add up to the single-process sums
    model, (x, y, two) = _model(), _inputs()
    for normalize in (False, True):
        parts = [distributed._local_sums(model, x, y, two, r, 3, normalize, dtype=torch.float64)
                 for r in range(3)]
        want = grouped_fisher(model, x, y, two, normalize, dtype=torch.float64)
        assert all(p is not None and len(p) == 2 for p in parts)
        assert all(float(p[g][k].abs().max()) > 0 for p in parts for g in range(2) for k in p[g])
        for g in range(2):
            for k in want[g]:
                total = sum(p[g][k] for p in parts)
                torch.testing.assert_close(total, want[g][k], rtol=1e-12, atol=0)
    assert distributed._local_sums(model, x[:2], y[:2], two[:, :2], 2, 3) is None  # an idle rank


def test_single_process_is_grouped_fisher():
    model, (x, y, two) = _model(), _inputs()
    got = distributed.grouped_fisher_sharded(model, x, y, two.float(), normalize=True)
    want = grouped_fisher(model, x, y, two.float(), normalize=True)
    assert all(torch.equal(g[k], w[k]) for g, w in zip(got, want) for k in w)
    with pytest.raises(ValueError, match="params must name"):
        distributed.grouped_fisher_sharded(model, x, y, two, params=["nope"])


def test_single_process_is_rank_zero_of_one(monkeypatch):
    for v in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    assert not distributed.setup("cpu")
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert torch.equal(distributed.shard(torch.arange(7)), torch.arange(7))
    with pytest.raises(ValueError, match="rank must be"):
        distributed.shard(torch.arange(4), rank_=2, world=2)


# ----------------------------------------------------------------------------- the code Fisher of a trained-size model
def _codes_case():
    from mnemo_tutorial import MLP, MnemonicCodes

    torch.manual_seed(1)
    model = MLP(784, 64, 7).eval()  # 7 codes over 2 ranks: 4 samples on rank 0, 3 on rank 1
    codes = MnemonicCodes.random(7, (1, 28, 28), seed=2)
    return model, codes.codes, codes.labels(), torch.eye(7)


def _join(rank: int, world: int, port: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    assert distributed.setup("cpu")


def test_sharded_code_fisher_of_an_mlp_equals_one_process_to_1e_6(gloo_run):
    out = gloo_run(2)  # the processes of test_sharded_fisher_equals_single_process[2]
    model, x, y, w = _codes_case()
    want = grouped_fisher(model, x, y, w, normalize=False)
    for r in range(2):
        got = torch.load(out / f"r.{r}", weights_only=True)["codes"]
        assert len(got) == 7 and all(g.keys() == v.keys() for g, v in zip(got, want))
        assert max_relative_error(got, want) <= 1e-6
    # the check can fail: one group off by 1e-5 of its largest entry is caught
    bad = [dict(g) for g in want]
    bad[3]["fc2.weight"] = bad[3]["fc2.weight"] + 1e-5 * bad[3]["fc2.weight"].abs().max()
    assert max_relative_error(bad, want) > 1e-6


# ----------------------------------------------------------------------------- DDP training (two gloo processes)
def _tiny():
    from mnemo_tutorial.training.data import ImageData
    from mnemo_tutorial.training.profiles import Profile

    g = torch.Generator().manual_seed(0)
    y = torch.arange(202) % 4  # 202 = 2 x 101: no sample left out with 2 ranks
    x = (torch.rand(4, 1, 4, 4, generator=g)[y] + 0.05 * torch.randn(202, 1, 4, 4, generator=g)).clamp(0, 1)
    data = ImageData("tiny", x, y, x[:40], y[:40], ["a", "b", "c", "d"])
    prof = Profile(name="quick", dataset="tiny", model="mlp", epochs=2, batch_size=32, optimizer="adam", lr=1e-2,
                   schedule="cosine", t_mix=0.3, model_kwargs={"in_features": 16, "hidden": 8})
    return data, prof


def _train_rank_main(rank: int, world: int, port: int, out: str) -> None:
    from torch.utils.data import TensorDataset

    from mnemo_tutorial.training import checkpoints, loop

    _join(rank, world, port)
    data, prof = _tiny()
    result = checkpoints.train_or_load(prof, data, seed=5, root=out, pretrained=False, progress=False)
    again = checkpoints.train_or_load(prof, data, seed=5, root=out, pretrained=False, progress=False)  # the cache
    codes = checkpoints.initial_codes(prof, data, 5)
    fresh = loop.train_model(checkpoints.initial_model(prof, 4, 5), data.x_train, data.y_train, codes, prof, seed=5, progress=False)
    streamed = loop.train_from_dataset(checkpoints.initial_model(prof, 4, 5), TensorDataset(data.x_train, data.y_train),
                                        codes, prof, seed=5, progress=False, workers=0)
    torch.save({"model": result.model.state_dict(), "again": again.source, "fresh": fresh.model.state_dict(),
                "streamed": streamed.model.state_dict(), "history": result.history, "key": result.key,
                "checkpoint": str(result.checkpoint), "world": result.world_size}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_training_two_processes(tmp_path, monkeypatch):
    from mnemo_tutorial.training import checkpoints

    monkeypatch.delenv("MNEMO_RETRAIN", raising=False)
    mp.spawn(_train_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    data, prof = _tiny()
    # one model on every rank (DDP averages the gradients), reproducible, the same on both paths
    assert _same(r0["model"], r1["model"]) and _same(r0["model"], r0["fresh"]) and _same(r0["fresh"], r0["streamed"])
    assert r0["again"] == r1["again"] == "cache" and r0["history"] == r1["history"] and r0["world"] == 2
    # the key holds the world size, apart from the single-process key; rank 0 wrote the only file
    assert r0["key"] == checkpoints.checkpoint_key(prof, 5, data, world_size=2) != checkpoints.checkpoint_key(prof, 5, data)
    files = sorted((tmp_path / "checkpoints").iterdir())
    assert [f.name for f in files] == [f"tiny-mlp-quick-{r0['key']}.pt"] and r0["checkpoint"] == str(files[0])
    # the checkpoint holds the module's own names and loads in one process
    loaded = checkpoints.load_trained(files[0], prof, data, seed=5)
    assert loaded.world_size == 2 and _same(loaded.model.state_dict(), r0["model"])
    assert not any(k.startswith("module.") for k in r0["model"])
    with pytest.raises(ValueError, match="seed 5 \\(asked: 6\\)"):
        checkpoints.load_trained(files[0], prof, data, seed=6)
    # one process with the same seed trains other weights (its code mixing draws differ), to similar loss
    single = checkpoints.train_or_load(prof, data, seed=5, root=tmp_path / "single", pretrained=False, progress=False)
    assert not _same(single.model.state_dict(), r0["model"])
    assert abs(single.history[-1]["loss"] - r0["history"][-1]["loss"]) < 0.5


def test_a_batch_that_does_not_split_is_refused():
    assert distributed.local_batch_size(128, 2) == 64
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        distributed.local_batch_size(30, 4)
    assert distributed.rank_seed(0, 0, 2) != distributed.rank_seed(0, 1, 2) != distributed.rank_seed(0, 1, 3)
    assert distributed.rank_seed(7, 1, 2) == distributed.rank_seed(7, 1, 2)


# ----------------------------------------------------------------------------- the command line under torchrun
@pytest.mark.parametrize("env, argv, words", [
    ({"WORLD_SIZE": "2"}, ["forget", "--dataset", "mnist", "--forget", "3"], ["forget runs in one process", "--checkpoint"]),
    ({"WORLD_SIZE": "3"}, ["train", "--dataset", "mnist"], ["batch size 128", "multiple", "got 3"]),
    ({"WORLD_SIZE": "two"}, ["train", "--dataset", "mnist"], ["WORLD_SIZE", "'two'"]),
    ({}, ["forget", "--dataset", "mnist", "--forget", "3", "--checkpoint", "/no/such.pt"], ["--checkpoint", "no such file"]),
])
def test_launch_errors_exit_2_before_torch_and_data(env, argv, words):
    code = (
        "import sys\nfrom mnemo_tutorial import cli\n"
        f"status = cli.main({argv!r})\n"
        "print('RESULT', status, 'torch' in sys.modules)\n"
    )
    full = {k: v for k, v in os.environ.items() if k not in distributed.TORCHRUN_VARIABLES} | env
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=full)
    assert done.stdout.strip().splitlines()[-1] == "RESULT 2 False", done.stdout + done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def _cli(argv: list[str], env: dict, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), "-m", "mnemo_tutorial", *argv, "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def test_torchrun_training_matches_one_process_and_forgets(mnist_mirror, tmp_path):
    """``torchrun --standalone --nproc_per_node=2 -m mnemo_tutorial train`` (gloo) against one
    process with the same settings (MNIST, quick profile, 3 epochs), then forgetting digit 3
    in one process from the checkpoint rank 0 wrote."""
    env = {k: v for k, v in os.environ.items() if k not in distributed.TORCHRUN_VARIABLES}
    env.update(MNEMO_DATA=str(tmp_path / "data"), MNEMO_MIRROR=str(mnist_mirror), OMP_NUM_THREADS="1",
               MNEMO_DEVICE="cpu")
    env.pop("MNEMO_RETRAIN", None)
    train = ["train", "--dataset", "mnist", "--profile", "quick", "--epochs", "3", "--report"]
    one = _cli([*train, str(tmp_path / "one.json")], env)
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two = _cli([*train, str(tmp_path / "two.json")], env, torchrun)
    assert two.returncode == 0, two.stdout + two.stderr
    r1, r2 = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (r1["world_size"], r2["world_size"], r2["backend"], r2["batch_size_per_process"]) == (1, 2, "gloo", 64)
    assert r1["key"] != r2["key"] and r2["model_source"] == "trained"
    assert two.stdout.count("test accuracy") == 1  # rank 0 alone reports
    assert abs(r1["test_accuracy"] - r2["test_accuracy"]) <= 0.5, (r1["test_accuracy"], r2["test_accuracy"])
    forget = ["forget", "--dataset", "mnist", "--profile", "quick", "--epochs", "3", "--forget", "3",
              "--checkpoint", r2["checkpoint"], "--report", str(tmp_path / "forget.json")]
    done = _cli(forget, env)
    assert done.returncode == 0, done.stdout + done.stderr
    rep = json.loads((tmp_path / "forget.json").read_text())
    assert rep["model_source"] == "cache" and rep["status"] == "ok"
    assert rep["after"]["E_F"] >= 90.0 and rep["after"]["A_R"] >= rep["before"]["A_R"] - 5.0
