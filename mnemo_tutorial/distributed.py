"""Several processes through ``torch.distributed`` (launched by ``torchrun``).

* :func:`setup` joins the process group that ``torchrun`` describes in the environment
  (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...): NCCL on CUDA, gloo on CPUs. Without those
  variables it does nothing and every helper below acts as a single process (rank 0 of 1).
* :func:`shard` gives a rank its part of an epoch's sample order; the training loop wraps
  the model in ``DistributedDataParallel`` (:func:`wrap`) when a group is active and splits
  the profile's batch over the ranks (:func:`local_batch_size`), see
  :mod:`mnemo_tutorial.training.checkpoints`.
* :func:`rank_seed` seeds the draws that differ between ranks (code mixing, augmentation):
  the same ``(seed, rank, world)`` gives the same draws on every run.
* :func:`grouped_fisher_sharded` computes weighted Fisher sums (the code Fisher of many
  classes, or ``forget``'s two groups) with the *samples* split over the ranks and the parts
  summed with one ``all_reduce``, after checking the arguments on every rank: the same numbers
  as :func:`mnemo_tutorial.core.fisher.grouped_fisher` in one process.

See the PyTorch documentation of ``torch.distributed`` and ``torchrun`` (elastic launch).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

from mnemo_tutorial.core import fisher
from mnemo_tutorial.core.fisher import ParamDict, grouped_fisher
from mnemo_tutorial.utils import module_device

__all__ = [
    "TORCHRUN_VARIABLES",
    "active",
    "all_agree",
    "all_sum",
    "backend",
    "barrier",
    "grouped_fisher_sharded",
    "is_main",
    "launched_by_torchrun",
    "local_batch_size",
    "main_first",
    "rank",
    "rank_device",
    "rank_seed",
    "setup",
    "shard",
    "teardown",
    "world_size",
    "wrap",
]

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
    """The device this rank computes on: ``cuda:LOCAL_RANK`` for CUDA under torchrun, else
    ``device``."""
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
    """True when ``flag`` is true on every rank (one ``all_reduce``; ``flag`` itself in one
    process)."""
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
        raise ValueError(
            f"the batch size ({batch_size}) must be a multiple of the number of processes "
            f"({world}): each process takes batch_size / {world} samples per step"
        )
    return batch_size // world


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when a group is active, else ``model`` itself.
    The wrapper is for the training steps only: checkpoints store ``model``'s own state."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else None
    )
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
        raise ValueError(
            f"rank must be in 0..{world - 1} and world size >= 1; got rank {rank_}, world {world}"
        )
    usable = (order.shape[0] // world) * world
    return order[:usable][rank_::world]


def _sample_shard(n: int, rank_: int, world: int) -> slice:
    """The samples rank ``rank_`` of ``world`` takes in :func:`grouped_fisher_sharded`: one
    contiguous block each, in rank order, the first ``n % world`` ranks one sample more (as
    ``torch.tensor_split``). The blocks partition ``range(n)``; with ``n < world`` the last
    ``world - n`` ranks get none."""
    if world < 1 or not 0 <= rank_ < world:
        raise ValueError(
            f"rank must be in 0..{world - 1} and world size >= 1; got rank {rank_}, world {world}"
        )
    size, extra = divmod(n, world)
    start = rank_ * size + min(rank_, extra)
    return slice(start, start + size + (rank_ < extra))


def _check_fisher_arguments(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    params: Sequence[str] | None,
    dtype: torch.dtype | None,
) -> list[str]:
    """The checks of :func:`~mnemo_tutorial.core.fisher.grouped_fisher` (same order, same messages),
    then ``y`` (N,) and ``dtype`` (None or floating point). -> the tensors, in model order."""
    n = x.shape[0]
    if weights.dim() != 2 or weights.shape[1] != n:
        raise ValueError(f"weights must have shape (G, {n}); got {tuple(weights.shape)}")
    names = fisher._check_params(model, params)
    if tuple(y.shape) != (n,):
        raise ValueError(f"y must have shape ({n},), one label per sample; got {tuple(y.shape)}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be None or a floating-point torch.dtype; got {dtype!r}")
    return names


def _local_sums(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    rank_: int,
    world: int,
    normalize: bool = False,
    params: Sequence[str] | None = None,
    dtype: torch.dtype | None = None,
    max_elements: int = fisher.MAX_CHUNK_ELEMENTS,
) -> list[ParamDict] | None:
    """``grouped_fisher`` over the samples of rank ``rank_`` (:func:`_sample_shard`, views, no
    copy): its part of every group's sum. None when the rank has no sample."""
    part = _sample_shard(x.shape[0], rank_, world)
    if part.start == part.stop:
        return None
    return grouped_fisher(
        model,
        x[part],
        y[part],
        weights[:, part],
        normalize=normalize,
        params=params,
        dtype=dtype,
        max_elements=max_elements,
    )


def _collective_device(home: torch.device) -> torch.device:
    """Where the reduced tensor lives: the model's GPU (else the current one) for NCCL, the CPU
    for gloo."""
    if backend() == "nccl":
        return home if home.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def grouped_fisher_sharded(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    normalize: bool = False,
    params: Sequence[str] | None = None,
    dtype: torch.dtype | None = None,
    *,
    max_elements: int = fisher.MAX_CHUNK_ELEMENTS,
) -> list[ParamDict]:
    """:func:`~mnemo_tutorial.core.fisher.grouped_fisher` with the samples split over the ranks.

    x: (N, *input_shape), y: (N,), weights: (G, N) -> G dicts {name: param_shape}, in the
    model's parameter order and in ``dtype`` (default the model's), equal on every rank.

    Every rank first checks the arguments as ``grouped_fisher`` does (same ValueError
    messages; also ``y`` (N,) and a floating-point ``dtype``) before any collective, so a bad
    argument raises on every rank. Rank r then computes all G groups over its contiguous
    block of samples (:func:`_sample_shard`; a rank without samples contributes zeros): a
    group is a per-sample weighted sum, and ``normalize`` divides by the sample's own squared
    gradient, so the blocks' sums add up to the full ones. The parts (G x parameter count)
    are flattened into one tensor (on the CPU for gloo, the model's GPU for NCCL) and summed
    with one ``all_reduce``; the dicts are views of the sum, on the model's device. A rank
    whose computation raises still joins that reduction (with a failure count in the tensor)
    and re-raises; the others then raise RuntimeError, so no rank waits forever. In a single
    process (no active group) it is ``grouped_fisher``.
    """
    if not active():
        return grouped_fisher(
            model, x, y, weights, normalize, params, dtype, max_elements=max_elements
        )
    names = _check_fisher_arguments(model, x, y, weights, params, dtype)  # before any collective
    tensors = dict(model.named_parameters())
    out_dtype = dtype if dtype is not None else next((tensors[k].dtype for k in names), x.dtype)
    home, groups, world = module_device(model), weights.shape[0], world_size()
    sizes = [tensors[k].numel() for k in names] * groups  # group-major: group 0's tensors first
    flat = torch.zeros(sum(sizes) + 1, dtype=out_dtype, device=_collective_device(home))
    try:
        parts = _local_sums(
            model, x, y, weights, rank(), world, normalize, params, dtype, max_elements
        )
        error = None
        _flatten_into(flat, [] if parts is None else [p[k] for p in parts for k in names])
    except Exception as exc:  # noqa: BLE001 (joins the reduction all the same, re-raised below)
        error = exc
        flat.zero_()
        flat[-1] = 1
    dist.all_reduce(flat)
    failed = int(flat[-1].item())
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(
            f"grouped_fisher_sharded failed on {failed} of {world} ranks (each "
            "raises its own error); no rank returns a result"
        )
    chunks = iter(flat[:-1].to(home).split(sizes))
    return [{k: next(chunks).view(tensors[k].shape) for k in names} for _ in range(groups)]


def _flatten_into(flat: torch.Tensor, pieces: list[torch.Tensor]) -> None:
    """Copy ``pieces`` (any device and dtype) one after the other into the start of ``flat``."""
    start = 0
    for piece in pieces:
        flat[start : start + piece.numel()].copy_(piece.reshape(-1))
        start += piece.numel()
