"""Several processes through ``torch.distributed`` (launched by ``torchrun``).

* :func:`setup` joins the process group that ``torchrun`` describes in the environment
  (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...): NCCL on CUDA, gloo on CPUs. Without those
  variables it does nothing and every helper below acts as a single process (rank 0 of 1).
* :func:`shard` gives a rank its part of an epoch's sample order; the training loop wraps
  the model in ``DistributedDataParallel`` (:func:`wrap`) when a group is active and splits
  the profile's batch over the ranks (:func:`local_batch_size`), see :mod:`mnemo_tutorial.train`.
* :func:`rank_seed` seeds the draws that differ between ranks (code mixing, augmentation):
  the same ``(seed, rank, world)`` gives the same draws on every run.
* :func:`grouped_fisher_sharded` computes the code Fisher of many classes with the classes
  split over the ranks and the parts summed with ``all_reduce``: the same numbers as
  :func:`mnemo_tutorial.fisher.grouped_fisher` in one process.

See the PyTorch documentation of ``torch.distributed`` and ``torchrun`` (elastic launch).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

from .fisher import ParamDict, grouped_fisher

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True when the environment holds the variables ``torchrun`` sets for each process."""
    return all(v in os.environ for v in TORCHRUN_VARIABLES)


def setup(device: torch.device | str | None = None) -> bool:
    """Join torchrun's process group if launched by it (idempotent); True when a group is active.

    The backend is NCCL for a CUDA ``device`` (each rank takes GPU ``LOCAL_RANK``) and gloo
    otherwise.
    """
    if dist.is_available() and dist.is_initialized():
        return True
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    use_cuda = device is not None and torch.device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def active() -> bool:
    """A process group with more than one rank is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes checkpoints and reports."""
    return rank() == 0


def backend() -> str | None:
    """The active group's backend (``"gloo"``, ``"nccl"``), or None in a single process."""
    return str(dist.get_backend()) if active() else None


def rank_device(device: torch.device) -> torch.device:
    """The device this rank computes on: ``cuda:LOCAL_RANK`` for CUDA under torchrun, else ``device``."""
    if device.type == "cuda" and active():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def teardown() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (nothing in a single process)."""
    if active():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. copying data from a mirror), the other ranks after it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def all_agree(flag: bool) -> bool:
    """True when ``flag`` is true on every rank (one ``all_reduce``; ``flag`` itself in one process)."""
    if not active():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the ranks (a new tensor; a copy in one process)."""
    out = values.clone()
    if active():
        dist.all_reduce(out)
    return out


def rank_seed(seed: int, rank_: int, world: int) -> int:
    """A 63-bit seed for the draws of ``rank_`` out of ``world`` (BLAKE2b of the three numbers),
    the same on every machine; ranks of one run, and runs of other world sizes, get other seeds."""
    text = f"{int(seed)},{int(rank_)},{int(world)}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def local_batch_size(batch_size: int, world: int | None = None) -> int:
    """Samples per rank and step: ``batch_size`` is the global batch, split evenly over the ranks,
    so that the averaged gradient, the number of steps and the learning-rate schedule are those
    of one process."""
    world = world_size() if world is None else world
    if batch_size % world:
        raise ValueError(f"the batch size ({batch_size}) must be a multiple of the number of processes "
                         f"({world}): each process takes batch_size / {world} samples per step")
    return batch_size // world


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when a group is active, else ``model`` itself.
    The wrapper is for the training steps only: checkpoints store ``model``'s own state."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(order: torch.Tensor, rank_: int | None = None, world: int | None = None) -> torch.Tensor:
    """This rank's part of a sample order (N,): every ``world``-th index from ``rank``.

    The order is cut to a multiple of ``world`` first, so every rank takes the same number of
    steps (DistributedDataParallel needs that; at most ``world - 1`` samples per epoch are
    left out, as ``DistributedSampler(drop_last=True)`` does).
    """
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    if world < 1 or not 0 <= rank_ < world:
        raise ValueError(f"rank must be in 0..{world - 1} and world size >= 1; got rank {rank_}, world {world}")
    usable = (order.shape[0] // world) * world
    return order[:usable][rank_::world]


def grouped_fisher_sharded(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    normalize: bool = False,
    params: Sequence[str] | None = None,
) -> list[ParamDict]:
    """:func:`~mnemo_tutorial.fisher.grouped_fisher` with the groups split over the ranks.

    x: (N, *input_shape), y: (N,), weights: (G, N) -> G dicts {name: param_shape}, equal on
    every rank. Each rank computes the groups ``g`` with ``g % world == rank`` from the
    samples those groups weigh (for codes: one code per class), then one ``all_reduce`` per
    tensor sums the (G, *param_shape) stacks. In a single process it is ``grouped_fisher``.
    """
    if not active():
        return grouped_fisher(model, x, y, weights, normalize=normalize, params=params)
    groups = weights.shape[0]
    mine = list(range(rank(), groups, world_size()))
    names = [k for k, _ in model.named_parameters() if params is None or k in set(params)]
    shapes = dict(model.named_parameters())
    device = next(iter(shapes.values())).device
    stacks = {k: torch.zeros((groups, *shapes[k].shape), device=device) for k in names}
    if mine:
        used = weights[mine].abs().sum(0) > 0  # the samples this rank's groups weigh
        on_x = used.to(x.device)
        part = grouped_fisher(model, x[on_x], y[on_x.to(y.device)], weights[mine][:, used],
                              normalize=normalize, params=params)
        for g, fisher in zip(mine, part):
            for k in names:
                stacks[k][g] = fisher[k].to(stacks[k].dtype)
    for k in names:
        dist.all_reduce(stacks[k])
    return [{k: stacks[k][g] for k in names} for g in range(groups)]
