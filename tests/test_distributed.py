"""torch.distributed helpers on two CPU processes (gloo): sharding, and the code Fisher
with classes split over ranks equal to the single-process result."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from mnemo_tutorial import distributed
from mnemo_tutorial.fisher import grouped_fisher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 5)).eval()


def _inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 1, 3, 4, generator=g)  # one code per class
    y = torch.arange(5)
    return x, y, torch.eye(5)


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    assert distributed.setup("cpu") and distributed.world_size() == world
    x, y, w = _inputs()
    got = distributed.grouped_fisher_sharded(_model(), x, y, w, normalize=True)
    order = distributed.shard(torch.arange(11))
    torch.save({"fisher": got, "shard": order}, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def test_sharded_code_fisher_equals_single_process(tmp_path):
    port, world = _free_port(), 2
    mp.spawn(_rank_main, args=(world, port, str(tmp_path / "r")), nprocs=world, join=True)
    x, y, w = _inputs()
    want = grouped_fisher(_model(), x, y, w, normalize=True)
    shards = []
    for r in range(world):
        saved = torch.load(tmp_path / f"r.{r}", weights_only=True)
        assert len(saved["fisher"]) == len(want)
        for got_g, want_g in zip(saved["fisher"], want):
            for k in want_g:
                torch.testing.assert_close(got_g[k], want_g[k], rtol=1e-5, atol=1e-8)
        shards.append(saved["shard"])
    # every rank the same number of samples, disjoint, together all but the remainder
    assert [len(s) for s in shards] == [5, 5]
    assert set(shards[0].tolist()).isdisjoint(shards[1].tolist())
    assert sorted(shards[0].tolist() + shards[1].tolist()) == list(range(10))


def test_single_process_is_rank_zero_of_one(monkeypatch):
    for v in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    assert not distributed.setup("cpu")
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert torch.equal(distributed.shard(torch.arange(7)), torch.arange(7))
    with pytest.raises(ValueError, match="rank must be"):
        distributed.shard(torch.arange(4), rank_=2, world=2)
