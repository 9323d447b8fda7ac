"""One training loop for every chapter, with mnemonic-code mixing (Shibata et al., IJCAI 2021;
Yamashita et al., ACML 2024), a checkpoint cache and the models shipped with the package.

:func:`train_or_load` looks for a model in this order: the data root's checkpoint cache
(``<root>/checkpoints``), the pretrained models shipped in ``mnemo_tutorial/pretrained``
(used only when their key equals the key of the request and their sha256 matches the
manifest), then trains. ``retrain=True`` (or ``MNEMO_RETRAIN=1``) skips both lookups.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from . import distributed
from .augment import random_crop_flip
from .codes import MnemonicCodes
from .data import ImageData, data_root
from .env import Precision, machine_description, retrain_requested, training_precision
from .models import make_model
from .profiles import Profile, TrainConfig
from .utils import atomic_path, get_device, isolated_rng

CHECKPOINT_FORMAT = 3
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
MANIFEST_NAME = "manifest.json"
SOURCES = ("trained", "cache", "pretrained")
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

    @property
    def from_cache(self) -> bool:
        """Whether the model was loaded (from the cache or the shipped models) instead of trained."""
        return self.source != "trained"

    def describe(self) -> str:
        """One line, e.g. ``trained in 58 s on cpu (...)`` or ``loaded the pretrained model
        (recorded: trained in 62 s on cpu (...))``."""
        trained = f"trained in {self.train_seconds:.0f} s on {self.trained_on or self.device}"
        if self.source == "trained":
            return trained
        what = "the pretrained model" if self.source == "pretrained" else "the cached model"
        return f"loaded {what} (recorded: {trained})"


# ---------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------
def _optimizer(model: nn.Module, profile: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if profile.optimizer == "sgd":
        return torch.optim.SGD(params, lr=profile.lr, momentum=profile.momentum, weight_decay=profile.weight_decay)
    if profile.optimizer == "adam":
        return torch.optim.Adam(params, lr=profile.lr, weight_decay=profile.weight_decay)
    if profile.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=profile.lr, weight_decay=profile.weight_decay)
    raise ValueError(f"profile.optimizer must be 'sgd', 'adam' or 'adamw'; got {profile.optimizer!r}")


def _scheduler(opt: torch.optim.Optimizer, profile: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Cosine decay per step down to 0 at the last step (``schedule="cosine"``), else None."""
    if profile.schedule != "cosine":
        return None
    total = steps_per_epoch * profile.epochs
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))


class EpochBatches(Sampler[list[int]]):
    """The sample indices of each step of one epoch, for this rank.

    Every epoch draws a permutation of ``range(n)`` from ``generator`` (the same on every rank,
    as all ranks seed it alike), keeps this rank's shard (:func:`mnemo_tutorial.distributed.shard`)
    and cuts it into batches of ``batch_size``. The permutation is drawn when the epoch's first
    batch is asked for. Used as the ``batch_sampler`` of a ``DataLoader`` (streaming) and by
    the in-memory path alike, so both see the same batches.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1):
        if n < world:
            raise ValueError(f"need at least one sample per process; got {n} samples for {world} processes")
        self.n, self.batch_size, self.generator, self.rank, self.world = n, batch_size, generator, rank, world

    def index_batches(self) -> Iterator[torch.Tensor]:
        order = distributed.shard(torch.randperm(self.n, generator=self.generator), self.rank, self.world)
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
    cast = torch.autocast(device_type=xb.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
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


def mixed_batches(loop: _Loop, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training batches of one epoch as the model sees them: each batch moved to
    ``device``, augmented (real samples only), then mixed with the codes
    (:meth:`~mnemo_tutorial.codes.MnemonicCodes.mix_batch`, probability ``profile.t_mix``).
    The one place where codes are mixed in, whatever the batches come from."""
    for xb, yb in batches:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if loop.augment is not None:
            xb = loop.augment(xb, loop.gen)
        xb, _ = loop.codes.mix_batch(xb, yb, loop.profile.t_mix, loop.gen)
        yield xb, yb


def _epoch(loop: _Loop, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> tuple[float, float]:
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
        totals = distributed.all_sum(torch.stack([loss_sum.double(), correct.double(), torch.tensor(float(seen), device=device, dtype=torch.float64)]))
        loss_sum, correct, seen = totals[0], totals[1], int(totals[2])
    return float(loss_sum) / seen, 100.0 * float(correct) / seen


def _train(model: nn.Module, codes: MnemonicCodes, profile: TrainConfig, seed: int, dev: torch.device,
           augment: Augment | None, progress: bool, n: int, source: Callable[[EpochBatches], Iterable]) -> TrainResult:
    """The loop shared by :func:`train_model` and :func:`train_from_dataset`; ``source`` turns
    the epoch's batch sampler into batches of (x, y)."""
    rank, world = distributed.rank(), distributed.world_size()
    local_batch = distributed.local_batch_size(profile.batch_size, world)
    precision = training_precision(dev.type)
    model.to(dev).train()
    net = distributed.wrap(model, dev)
    opt = _optimizer(model, profile)
    scaler = torch.amp.GradScaler(dev.type) if precision.grad_scaler else None
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    with isolated_rng(seed, dev) as gen:
        sampler = EpochBatches(n, local_batch, gen, rank, world)
        draws = gen if world == 1 else torch.Generator().manual_seed(distributed.rank_seed(seed, rank, world))
        loop = _Loop(net, codes.to(dev), profile, opt, _scheduler(opt, profile, len(sampler)), precision, scaler, augment, draws)
        batches = source(sampler)
        desc = f"train {profile.dataset}/{profile.name}" if isinstance(profile, Profile) else "train"
        bar = tqdm(range(profile.epochs), desc=desc, disable=not progress or rank != 0)
        for epoch in bar:
            loss, acc = _epoch(loop, batches, dev)
            history.append({"epoch": epoch + 1, "loss": loss, "train_acc": acc})
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.1f}")
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    model.eval()
    opt.zero_grad(set_to_none=True)
    on = machine_description(dev) + (f", {world} processes ({distributed.backend()})" if world > 1 else "")
    return TrainResult(model=model, codes=codes, train_seconds=seconds, device=str(dev), precision=precision.name,
                       trained_on=on, history=history, world_size=world)


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
) -> TrainResult:
    """Train ``model`` in place on (x (N, *input_shape), y (N,)) with code mixing, following
    ``profile`` (a :class:`~mnemo_tutorial.profiles.TrainConfig`, or a registered Profile).

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
        raise ValueError("profile must be a TrainConfig (or a registered Profile), e.g. "
                         f"TrainConfig(epochs=5); got {type(profile).__name__}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must hold the same positive number of samples; got {x.shape[0]} and {y.shape[0]}")
    dev = distributed.rank_device(get_device(device))
    x_dev, y_dev = x.to(dev), y.to(dev)
    return _train(model, codes, profile, seed, dev, augment, progress, x.shape[0],
                  lambda sampler: _InMemory(sampler, x_dev, y_dev))


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
        raise ValueError(f"dataset must have a length (a map-style torch.utils.data.Dataset); got {type(dataset).__name__}") from None
    if n == 0:
        raise ValueError("dataset must hold at least one sample; got an empty dataset")
    dev = distributed.rank_device(get_device(device))

    def loader(sampler: EpochBatches) -> DataLoader:
        return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=dev.type == "cuda",
                          persistent_workers=workers > 0, generator=torch.Generator().manual_seed(int(seed)))

    return _train(model, codes, profile, seed, dev, augment, progress, n, loader)


# ---------------------------------------------------------------------------------------
# What a profile builds
# ---------------------------------------------------------------------------------------
def profile_augment(profile: Profile) -> Augment | None:
    """The augmentation ``profile.augment`` asks for (random crop + flip), or None."""
    return random_crop_flip if profile.augment else None


def initial_model(profile: Profile, num_classes: int, seed: int = 0) -> nn.Module:
    """The untrained model of ``profile``; its initial weights depend on ``seed`` alone (the
    caller's global random state is left as it was)."""
    with isolated_rng(seed):
        return make_model(profile.model, num_classes=num_classes, **profile.model_options())


def initial_codes(profile: Profile, data: ImageData, seed: int = 0) -> MnemonicCodes:
    """The mnemonic codes trained with ``profile`` on ``data`` for ``seed``."""
    return MnemonicCodes.random(data.num_classes, data.input_shape, seed=seed, distribution=profile.code_dist)


def checkpoint_key(profile: Profile, seed: int, data: ImageData, world_size: int = 1) -> str:
    """16 hex digits of SHA-256 over the training settings (:meth:`Profile.key_dict`), the seed
    and the data's fingerprint (name, size, shape, classes, notes).

    Forgetting and sweep settings are not part of it, and neither is the device or the
    precision: a model trained on a GPU and one trained on a CPU with the same key are the
    same recipe (their weights differ in the last bits). The number of training processes
    is, when above 1 (the code mixing draws depend on it); one process has the key it always had.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer; got {world_size!r}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "profile": profile.key_dict(),
        "seed": int(seed),
        "dataset": data.name,
        "n_train": int(data.x_train.shape[0]),
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "data_notes": data.notes,
    }
    if world_size > 1:
        payload["world_size"] = world_size
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# Checkpoints: the data root's cache and the shipped models
# ---------------------------------------------------------------------------------------
def checkpoint_state(result: TrainResult, profile: Profile, seed: int) -> dict[str, Any]:
    """What a checkpoint file holds (tensors, numbers, strings, lists and dicts only, so that
    ``torch.load(..., weights_only=True)`` reads it)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "key": result.key,
        "model": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "codes": result.codes.state_dict(),
        "train_seconds": float(result.train_seconds),
        "history": result.history,
        "device": result.device,
        "trained_on": result.trained_on,
        "precision": result.precision,
        "profile": profile.key_dict(),
        "seed": int(seed),
    } | ({"world_size": result.world_size} if result.world_size > 1 else {})


def save_checkpoint(result: TrainResult, profile: Profile, seed: int, path: str | Path) -> Path:
    """Write :func:`checkpoint_state` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint_state(result, profile, seed), tmp)
    return path


def _load_checkpoint(path: Path, key: str, profile: Profile, num_classes: int, dev: torch.device, source: str) -> TrainResult | None:
    """The model in ``path`` if it is a checkpoint of this format for ``key``, else None."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("key") != key:
        return None
    model = initial_model(profile, num_classes)
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    return TrainResult(
        model=model, codes=MnemonicCodes.from_state_dict(state["codes"]), train_seconds=float(state["train_seconds"]),
        device=str(dev), key=key, source=source, precision=state.get("precision", "float32"),
        trained_on=state.get("trained_on", state.get("device", "")), history=state.get("history", []), checkpoint=path,
        world_size=int(state.get("world_size", 1)),
    )


def load_trained(path: str | Path, profile: Profile, data: ImageData, seed: int = 0,
                 device: str | torch.device | None = None) -> TrainResult:
    """The model in the checkpoint file ``path`` (e.g. one trained with ``torchrun``, whose key
    holds its number of processes), in this process, for forgetting.

    Raises ValueError unless the file is a checkpoint of this format trained with ``profile``
    and ``seed`` on ``data``; the source is ``"cache"``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint of format {CHECKPOINT_FORMAT}")
    world = int(state.get("world_size", 1))
    key = checkpoint_key(profile, seed, data, world_size=world)
    if state.get("key") != key:
        theirs = {**(state.get("profile") or {}), "seed": state.get("seed")}
        ours = {**profile.key_dict(), "seed": int(seed)}
        diff = [f"{k} {theirs.get(k)!r} (asked: {ours[k]!r})" for k in ours if theirs.get(k) != ours[k]]
        raise ValueError(f"{path} was trained with other settings: {', '.join(diff) or f'other data than {data.name}'}")
    found = _load_checkpoint(path, key, profile, data.num_classes, get_device(device), "cache")
    assert found is not None  # the format and the key were checked above
    return found


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_models(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """The entries of the shipped models' manifest (``pretrained/manifest.json``); [] if none."""
    manifest = Path(directory or PRETRAINED_DIR) / MANIFEST_NAME
    if not manifest.exists():
        return []
    return list(json.loads(manifest.read_text())["models"])


def _load_pretrained(key: str, profile: Profile, num_classes: int, dev: torch.device) -> TrainResult | None:
    """The shipped model whose manifest key is ``key``, if its sha256 matches; else None."""
    for entry in shipped_models():
        if entry.get("key") != key:
            continue
        path = Path(PRETRAINED_DIR) / entry["file"]
        if not path.exists() or file_sha256(path) != entry.get("sha256"):
            warnings.warn(f"shipped model {entry['file']} is missing or does not match its sha256 in the manifest; training instead")
            return None
        return _load_checkpoint(path, key, profile, num_classes, dev, "pretrained")
    return None


def cache_path(profile: Profile, data: ImageData, key: str, root: str | Path | None = None) -> Path:
    """Where the checkpoint of ``key`` lives in the data root's cache."""
    return data_root(root) / "checkpoints" / f"{data.name}-{profile.model}-{profile.name}-{key}.pt"


def _check_seed(seed: Any) -> None:
    try:
        ok = not isinstance(seed, bool) and operator.index(seed) >= 0
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")


def train_or_load(
    profile: Profile,
    data: ImageData,
    seed: int = 0,
    *,
    root: str | Path | None = None,
    device: str | torch.device | None = None,
    augment: Augment | None = None,
    use_cache: bool = True,
    pretrained: bool = True,
    retrain: bool | None = None,
    progress: bool = True,
) -> TrainResult:
    """The model of ``profile`` trained on ``data`` with codes and initial weights from ``seed``.

    Looks in the data root's cache (``use_cache``), then in the shipped models
    (``pretrained``), then trains and caches the result (``use_cache``). ``retrain=True``
    skips both lookups; ``None`` reads ``MNEMO_RETRAIN`` (:func:`mnemo_tutorial.env.retrain_requested`).
    ``augment`` defaults to the profile's. The caller's global random state is left as it was.

    Under ``torchrun`` (see :func:`train_model`) the key holds the number of processes, every
    rank loads or every rank trains, and only rank 0 writes the checkpoint.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a Profile (see get_profile); got {type(profile).__name__}")
    _check_seed(seed)
    retrain = retrain_requested() if retrain is None else bool(retrain)
    world = distributed.world_size()
    distributed.local_batch_size(profile.batch_size, world)  # a batch that does not split fails here
    dev = distributed.rank_device(get_device(device))
    key = checkpoint_key(profile, seed, data, world_size=world)
    path = cache_path(profile, data, key, root)
    if not retrain:
        found = _load_checkpoint(path, key, profile, data.num_classes, dev, "cache") if use_cache and path.exists() else None
        if found is None and pretrained:
            found = _load_pretrained(key, profile, data.num_classes, dev)
        if distributed.all_agree(found is not None):
            return found  # type: ignore[return-value]
    model = initial_model(profile, data.num_classes, seed)
    codes = initial_codes(profile, data, seed)
    result = train_model(model, data.x_train, data.y_train, codes, profile, seed=seed, device=dev,
                         augment=augment if augment is not None else profile_augment(profile), progress=progress)
    result.key = key
    if use_cache:
        if distributed.is_main():
            save_checkpoint(result, profile, seed, path)
        distributed.barrier()
        result.checkpoint = path
    return result
