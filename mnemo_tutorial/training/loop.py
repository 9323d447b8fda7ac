"""One training loop for every chapter, with mnemonic-code mixing (Shibata et al., IJCAI 2021;
Yamashita et al., ACML 2024): :func:`train_model` (tensors in memory) and
:func:`train_from_dataset` (a ``torch.utils.data`` dataset), for any model and a
:class:`~mnemo_tutorial.training.profiles.TrainConfig`. Where trained models are stored and
found: :mod:`~mnemo_tutorial.training.checkpoints`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from mnemo_tutorial import distributed
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.env import (
    Precision,
    machine_description,
    training_precision,
)
from mnemo_tutorial.training.profiles import Profile, TrainConfig
from mnemo_tutorial.utils import get_device, isolated_rng, module_device

__all__ = [
    "Augment",
    "EpochBatches",
    "mixed_batches",
    "record_alignment",
    "train_from_dataset",
    "train_model",
    "TrainResult",
]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class TrainResult:
    """A trained model with its codes and where it came from.

    ``device``: where ``model`` is now; ``source``: ``"trained"`` (just now), ``"cache"`` (the
    data root's checkpoint) or ``"pretrained"`` (shipped with the package). For a loaded model,
    ``train_seconds``, ``precision``, ``trained_on`` and ``history`` are the values recorded
    when it was trained, never a measurement of this machine.
    """

    model: nn.Module
    codes: MnemonicCodes
    train_seconds: float
    device: str = "cpu"
    key: str = ""
    source: str = "trained"
    precision: str = "float32"
    trained_on: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    world_size: int = 1
    # a shipped model: its test accuracy recorded in the manifest, and the one measured on
    # the data it was loaded for (None otherwise)
    recorded_accuracy: float | None = None
    measured_accuracy: float | None = None

    @property
    def from_cache(self) -> bool:
        """Whether the model was loaded (from the cache or the shipped models) instead of
        trained."""
        return self.source != "trained"

    def describe(self) -> str:
        """One line, e.g. ``trained in 58 s on cpu (...)`` or ``loaded the pretrained model
        (recorded: trained in 62 s on cpu (...))``."""
        trained = f"trained in {self.train_seconds:.0f} s on {self.trained_on or self.device}"
        if self.source == "trained":
            return trained
        what = "the pretrained model" if self.source == "pretrained" else "the cached model"
        accuracy = ""
        if self.recorded_accuracy is not None and self.measured_accuracy is not None:
            accuracy = (
                f"; test accuracy recorded {self.recorded_accuracy:.2f} %, "
                f"measured on this data {self.measured_accuracy:.2f} %"
            )
        return f"loaded {what} (recorded: {trained}{accuracy})"


# ---------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------
def _adam(cls: type, params: list[nn.Parameter], profile: TrainConfig) -> torch.optim.Optimizer:
    """``cls`` (Adam or AdamW) in PyTorch's fused form where the parameters allow it (torch >=
    2.4, float parameters on the CPU or CUDA): one pass over each tensor per step instead of
    one per operation (the MNIST MLP's step, one CPU thread: 0.7 ms instead of 3.0 ms). It
    rounds differently in the last bits; elsewhere the per-tensor loop."""
    kwargs = {"lr": profile.lr, "weight_decay": profile.weight_decay}
    fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if fusable:
        try:
            return cls(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):  # torch < 2.4 on the CPU, or a dtype
            pass
    return cls(params, **kwargs)


def _optimizer(model: nn.Module, profile: TrainConfig) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if profile.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=profile.lr, momentum=profile.momentum, weight_decay=profile.weight_decay
        )
    if profile.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if profile.optimizer == "adam" else torch.optim.AdamW
        return _adam(cls, params, profile)
    raise ValueError(
        f"profile.optimizer must be 'sgd', 'adam' or 'adamw'; got {profile.optimizer!r}"
    )


def _scheduler(
    opt: torch.optim.Optimizer, profile: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Cosine decay per step down to 0 at the last step (``schedule="cosine"``), else None."""
    if profile.schedule != "cosine":
        return None
    total = steps_per_epoch * profile.epochs
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )


class EpochBatches(Sampler[list[int]]):
    """The sample indices of each step of one epoch, for this rank.

    Every epoch draws a permutation of ``range(n)`` from ``generator`` (the same on every rank,
    as all ranks seed it alike), keeps this rank's shard (:func:`mnemo_tutorial.distributed.shard`)
    and cuts it into batches of ``batch_size``. The permutation is drawn when the epoch's first
    batch is asked for. Used as the ``batch_sampler`` of a ``DataLoader`` (streaming) and by
    the in-memory path alike, so both see the same batches.
    """

    def __init__(
        self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1
    ):
        if n < world:
            raise ValueError(
                f"need at least one sample per process; got {n} samples for {world} processes"
            )
        self.n, self.batch_size, self.generator, self.rank, self.world = (
            n,
            batch_size,
            generator,
            rank,
            world,
        )

    def index_batches(self) -> Iterator[torch.Tensor]:
        order = distributed.shard(
            torch.randperm(self.n, generator=self.generator), self.rank, self.world
        )
        for start in range(0, order.shape[0], self.batch_size):
            yield order[start : start + self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        for idx in self.index_batches():
            yield idx.tolist()

    def __len__(self) -> int:
        return math.ceil((self.n // self.world) / self.batch_size)


class _InMemory:
    """One epoch of batches from tensors already on the training device."""

    def __init__(self, sampler: EpochBatches, x: torch.Tensor, y: torch.Tensor):
        self.sampler, self.x, self.y = sampler, x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.sampler.index_batches():
            idx = idx.to(self.x.device)
            yield self.x[idx], self.y[idx]


@dataclass
class _Loop:
    """What one epoch needs besides the data. ``gen`` draws the augmentation and the code mixing."""

    model: nn.Module
    codes: MnemonicCodes
    profile: TrainConfig
    opt: torch.optim.Optimizer
    sched: Any
    precision: Precision
    scaler: Any
    augment: Augment | None
    gen: torch.Generator


def _step(loop: _Loop, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch; returns (summed loss, number correct) as tensors."""
    dtype = loop.precision.autocast_dtype
    cast = (
        torch.autocast(device_type=xb.device.type, dtype=dtype)
        if dtype is not None
        else contextlib.nullcontext()
    )
    with cast:
        logits = loop.model(xb)
    loss = nn.functional.cross_entropy(logits.float(), yb)
    loop.opt.zero_grad(set_to_none=True)
    if loop.scaler is None:
        loss.backward()
        loop.opt.step()
    else:  # float16: scale the loss so that small gradients do not underflow
        loop.scaler.scale(loss).backward()
        loop.scaler.step(loop.opt)
        loop.scaler.update()
    if loop.sched is not None:
        loop.sched.step()
    return loss.detach() * yb.shape[0], (logits.detach().argmax(1) == yb).sum()


def mixed_batches(
    loop: _Loop, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training batches of one epoch as the model sees them: each batch moved to
    ``device``, augmented (real samples only), then mixed with the codes
    (:meth:`~mnemo_tutorial.core.codes.MnemonicCodes.mix_batch`, probability ``profile.t_mix``).
    The one place where codes are mixed in, whatever the batches come from."""
    for xb, yb in batches:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if loop.augment is not None:
            xb = loop.augment(xb, loop.gen)
        xb, _ = loop.codes.mix_batch(xb, yb, loop.profile.t_mix, loop.gen)
        yield xb, yb


def _epoch(
    loop: _Loop, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> tuple[float, float]:
    """One pass over the batches; returns (mean loss, train accuracy in %) over every rank."""
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for xb, yb in mixed_batches(loop, batches, device):
        loss, hits = _step(loop, xb, yb)
        loss_sum += loss
        correct += hits
        seen += yb.shape[0]
    if distributed.active():
        totals = distributed.all_sum(
            torch.stack(
                [
                    loss_sum.double(),
                    correct.double(),
                    torch.tensor(float(seen), device=device, dtype=torch.float64),
                ]
            )
        )
        loss_sum, correct, seen = totals[0], totals[1], int(totals[2])
    return float(loss_sum) / seen, 100.0 * float(correct) / seen


def _code_draws(gen: torch.Generator, seed: int, rank: int, world: int) -> torch.Generator:
    """The generator of the code-mixing draws: ``gen`` alone, else one seeded per rank."""
    return (
        gen
        if world == 1
        else torch.Generator().manual_seed(distributed.rank_seed(seed, rank, world))
    )


def _run_epochs(
    loop: _Loop, batches: Iterable, dev: torch.device, progress: bool, rank: int
) -> list[dict[str, float]]:
    """Every epoch of ``loop.profile`` over ``batches``, with a progress bar; the history."""
    profile = loop.profile
    history: list[dict[str, float]] = []
    desc = f"train {profile.dataset}/{profile.name}" if isinstance(profile, Profile) else "train"
    bar = tqdm(range(profile.epochs), desc=desc, disable=not progress or rank != 0)
    for epoch in bar:
        loss, acc = _epoch(loop, batches, dev)
        history.append({"epoch": epoch + 1, "loss": loss, "train_acc": acc})
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.1f}")
    return history


def _trained_on(dev: torch.device, world: int) -> str:
    """The machine the model was trained on, with the number of processes when above 1."""
    return machine_description(dev) + (
        f", {world} processes ({distributed.backend()})" if world > 1 else ""
    )


def _train(
    model: nn.Module,
    codes: MnemonicCodes,
    profile: TrainConfig,
    seed: int,
    dev: torch.device,
    augment: Augment | None,
    progress: bool,
    n: int,
    source: Callable[[EpochBatches], Iterable],
) -> TrainResult:
    """The loop shared by :func:`train_model` and :func:`train_from_dataset`; ``source`` turns
    the epoch's batch sampler into batches of (x, y)."""
    rank, world = distributed.rank(), distributed.world_size()
    local_batch = distributed.local_batch_size(profile.batch_size, world)
    precision = training_precision(dev.type)
    model.to(dev).train()
    net = distributed.wrap(model, dev)
    opt = _optimizer(model, profile)
    scaler = torch.amp.GradScaler(dev.type) if precision.grad_scaler else None
    t0 = time.perf_counter()
    with isolated_rng(seed, dev) as gen:
        sampler = EpochBatches(n, local_batch, gen, rank, world)
        draws = _code_draws(gen, seed, rank, world)
        loop = _Loop(
            net,
            codes.to(dev),
            profile,
            opt,
            _scheduler(opt, profile, len(sampler)),
            precision,
            scaler,
            augment,
            draws,
        )
        history = _run_epochs(loop, source(sampler), dev, progress, rank)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    model.eval()
    opt.zero_grad(set_to_none=True)
    return TrainResult(
        model=model,
        codes=codes,
        train_seconds=seconds,
        device=str(dev),
        precision=precision.name,
        trained_on=_trained_on(dev, world),
        history=history,
        world_size=world,
    )


def record_alignment(
    result: TrainResult,
    x: torch.Tensor,
    y: torch.Tensor,
    rehearse: bool = False,
    progress: bool = False,
) -> TrainResult:
    """Measure where ``result``'s codes sit among its classes on the training samples (x, y)
    (:func:`~mnemo_tutorial.core.alignment.measure_alignment`) and, with ``rehearse``, forget
    each class once on them (:func:`~mnemo_tutorial.core.rehearsal.rehearse`, a progress bar
    with ``progress`` on rank 0); record both with the codes, for ``forget``. A model without
    an output layer of C outputs (an ``nn.Linear``) gets no record."""
    from mnemo_tutorial.core.alignment import measure_alignment
    from mnemo_tutorial.core.rehearsal import rehearse as run_rehearsal

    try:
        record = measure_alignment(result.model, result.codes.codes, x, y)
    except ValueError:  # no nn.Linear with C outputs: nothing to compare with
        return result
    if rehearse:
        codes = result.codes.codes.to(module_device(result.model))
        shown = progress and distributed.rank() == 0
        rehearsal = run_rehearsal(result.model, codes, x, y, progress=shown)
        record = record.with_rehearsal(rehearsal)
    result.codes = result.codes.with_alignment(record)
    return result


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    codes: MnemonicCodes,
    profile: TrainConfig,
    seed: int = 0,
    device: str | torch.device | None = None,
    augment: Augment | None = None,
    progress: bool = True,
    rehearse: bool = True,
) -> TrainResult:
    """Train ``model`` in place on (x (N, *input_shape), y (N,)) with code mixing, following
    ``profile`` (a :class:`~mnemo_tutorial.training.profiles.TrainConfig`, or a registered Profile).

    With codes (``profile.t_mix > 0``) the result's codes carry the alignment record and, with
    ``rehearse``, forgetting rehearsed class by class on a sample of (x, y)
    (:func:`record_alignment`; one one-shot step per class and candidate), which ``forget`` reads.

    Each epoch shuffles the data, applies ``augment`` to the real samples, then swaps each
    sample for its class's code with probability ``profile.t_mix`` (codes are never
    augmented). Precision by device (:func:`mnemo_tutorial.env.training_precision`): float32
    on the CPU, bfloat16 autocast on CUDA >= 8.0, float16 autocast + gradient scaler below.
    Every draw comes from ``seed``; the caller's global random state is left as it was.

    Under ``torchrun`` (a process group joined with :func:`mnemo_tutorial.distributed.setup`)
    the model trains in ``DistributedDataParallel``: ``profile.batch_size`` is the global
    batch, each rank takes its shard of every epoch's permutation (drawn alike on every rank)
    and mixes codes with draws seeded by ``(seed, rank, world size)``
    (:func:`~mnemo_tutorial.distributed.rank_seed`): reproducible for a given world size.
    One process draws everything from ``seed`` alone, as before.
    """
    if not isinstance(profile, TrainConfig):
        raise ValueError(
            "profile must be a TrainConfig (or a registered Profile), e.g. "
            f"TrainConfig(epochs=5); got {type(profile).__name__}"
        )
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            "x and y must hold the same positive number of samples; "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    dev = distributed.rank_device(get_device(device))
    x_dev, y_dev = x.to(dev), y.to(dev)
    result = _train(
        model,
        codes,
        profile,
        seed,
        dev,
        augment,
        progress,
        x.shape[0],
        lambda sampler: _InMemory(sampler, x_dev, y_dev),
    )
    if profile.t_mix <= 0:
        return result
    return record_alignment(result, x, y, rehearse, progress)


def train_from_dataset(
    model: nn.Module,
    dataset: Dataset,
    codes: MnemonicCodes,
    profile: TrainConfig,
    seed: int = 0,
    device: str | torch.device | None = None,
    augment: Augment | None = None,
    progress: bool = True,
    workers: int = 2,
    rehearse: bool = True,
) -> TrainResult:
    """:func:`train_model` on a ``torch.utils.data`` dataset (items ``(x, label)``, e.g. a
    torchvision ``ImageFolder`` with ``ToTensor``) read through a ``DataLoader`` with
    ``workers`` worker processes, for data that does not fit in memory.

    The loader's ``batch_sampler`` is the in-memory path's (:class:`EpochBatches`) and the
    batches go through the same augmentation and code mixing (:func:`mixed_batches`): on a
    dataset holding the same tensors, both paths train the same weights.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer; got {workers!r}")
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            "dataset must have a length (a map-style torch.utils.data.Dataset); "
            f"got {type(dataset).__name__}"
        ) from None
    if n == 0:
        raise ValueError("dataset must hold at least one sample; got an empty dataset")
    dev = distributed.rank_device(get_device(device))

    def loader(sampler: EpochBatches) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=dev.type == "cuda",
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(int(seed)),
        )

    result = _train(model, codes, profile, seed, dev, augment, progress, n, loader)
    if profile.t_mix > 0:
        from mnemo_tutorial.core.alignment import SAMPLES_PER_CLASS

        x, y = _dataset_sample(dataset, codes.num_classes * SAMPLES_PER_CLASS, seed)
        record_alignment(result, x, y, rehearse, progress)
    return result


def _dataset_sample(dataset: Dataset, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``k`` random items of ``dataset`` as (x, y) tensors."""
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(dataset), generator=gen)[:k].tolist()  # type: ignore[arg-type]
    items = [dataset[i] for i in idx]
    return torch.stack([torch.as_tensor(x) for x, _ in items]), torch.tensor(
        [int(y) for _, y in items]
    )
