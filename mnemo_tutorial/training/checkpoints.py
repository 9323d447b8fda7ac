"""Trained models and where they come from: checkpoint keys, the data root's cache, the
models shipped with the package, and :func:`train_or_load`.

:func:`train_or_load` looks for a model in this order: the data root's checkpoint cache
(``<root>/checkpoints``), the pretrained models shipped in ``mnemo_tutorial/pretrained``
(used only when their key equals the key of the request and their sha256 matches the
manifest), then trains (:func:`~mnemo_tutorial.training.loop.train_model`).
``retrain=True`` (or ``MNEMO_RETRAIN=1``) skips both lookups.
"""

from __future__ import annotations

import hashlib
import json
import operator
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnemo_tutorial import distributed
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.env import (
    retrain_requested,
)
from mnemo_tutorial.training.augment import random_crop_flip
from mnemo_tutorial.training.data import ImageData, data_root
from mnemo_tutorial.training.loop import (
    Augment,
    TrainResult,
    record_alignment,
    train_model,
)
from mnemo_tutorial.training.models import make_model
from mnemo_tutorial.training.profiles import Profile
from mnemo_tutorial.utils import atomic_path, get_device, isolated_rng

__all__ = [
    "CHECKPOINT_FORMAT",
    "MANIFEST_NAME",
    "PRETRAINED_DIR",
    "SOURCES",
    "cache_path",
    "checkpoint_key",
    "checkpoint_state",
    "check_shipped_accuracy",
    "file_sha256",
    "initial_codes",
    "initial_model",
    "load_checkpoint",
    "load_pretrained",
    "load_trained",
    "profile_augment",
    "save_checkpoint",
    "shipped_models",
    "train_or_load",
]

CHECKPOINT_FORMAT = 3
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
MANIFEST_NAME = "manifest.json"
SOURCES = ("trained", "cache", "pretrained")


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
    return MnemonicCodes.random(
        data.num_classes, data.input_shape, seed=seed, distribution=profile.code_dist
    )


def checkpoint_key(profile: Profile, seed: int, data: ImageData, world_size: int = 1) -> str:
    """16 hex digits of SHA-256 over the training settings (:meth:`Profile.key_dict`), the seed
    and what the data set is (:meth:`ImageData.identity`: name, split sizes, input shape,
    classes, preprocessing).

    Where the data was read from is not part of it (the offline mirror, a torchvision or
    scikit-learn download: the same data set, the same key), and neither are forgetting and
    sweep settings, the device or the precision: a model trained on a GPU and one trained on
    a CPU with the same key are the same recipe (their weights differ in the last bits). The
    number of training processes is, when above 1 (the code mixing draws depend on it).
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer; got {world_size!r}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "profile": profile.key_dict(),
        "seed": int(seed),
        "data": data.identity(),
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


def load_checkpoint(
    path: Path, key: str, profile: Profile, num_classes: int, dev: torch.device, source: str
) -> TrainResult | None:
    """The model in ``path`` if it is a checkpoint of this format for ``key``, else None."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("key") != key:
        return None
    model = initial_model(profile, num_classes)
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    return TrainResult(
        model=model,
        codes=MnemonicCodes.from_state_dict(state["codes"]),
        train_seconds=float(state["train_seconds"]),
        device=str(dev),
        key=key,
        source=source,
        precision=state.get("precision", "float32"),
        trained_on=state.get("trained_on", state.get("device", "")),
        history=state.get("history", []),
        checkpoint=path,
        world_size=int(state.get("world_size", 1)),
    )


def load_trained(
    path: str | Path,
    profile: Profile,
    data: ImageData,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> TrainResult:
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
        diff = [
            f"{k} {theirs.get(k)!r} (asked: {ours[k]!r})" for k in ours if theirs.get(k) != ours[k]
        ]
        raise ValueError(
            f"{path} was trained with other settings: "
            f"{', '.join(diff) or f'other data than {data.name}'}"
        )
    found = load_checkpoint(path, key, profile, data.num_classes, get_device(device), "cache")
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


def load_pretrained(
    key: str, profile: Profile, num_classes: int, dev: torch.device
) -> TrainResult | None:
    """The shipped model whose manifest key is ``key``, if its sha256 matches; else None."""
    for entry in shipped_models():
        if entry.get("key") != key:
            continue
        path = Path(PRETRAINED_DIR) / entry["file"]
        if not path.exists() or file_sha256(path) != entry.get("sha256"):
            warnings.warn(
                f"shipped model {entry['file']} is missing or does not match its sha256 "
                "in the manifest; training instead",
                stacklevel=2,
            )
            return None
        found = load_checkpoint(path, key, profile, num_classes, dev, "pretrained")
        if found is not None and entry.get("test_accuracy") is not None:
            found.recorded_accuracy = float(entry["test_accuracy"])
        return found
    return None


ACCURACY_TOLERANCE = 1.0  # points of test accuracy between a shipped model's record and here


def check_shipped_accuracy(result: TrainResult, data: ImageData) -> TrainResult:
    """For a shipped model (``result.source == "pretrained"``): measure its test accuracy on
    ``data`` (the reader's copy of the data set), store it in ``result.measured_accuracy``
    and warn when it differs from the recorded one by more than :data:`ACCURACY_TOLERANCE`
    points (another copy of the data set: e.g. CIFAR-10's original release against the
    JPEG copy the model was trained on). Other results are returned unchanged."""
    if result.source != "pretrained" or result.recorded_accuracy is None:
        return result
    from mnemo_tutorial.evaluation.metrics import predict

    preds = predict(result.model, data.x_test)
    result.measured_accuracy = float((preds == data.y_test.cpu()).double().mean() * 100.0)
    gap = result.measured_accuracy - result.recorded_accuracy
    if abs(gap) > ACCURACY_TOLERANCE:
        warnings.warn(
            f"the shipped {data.name} model scores {result.measured_accuracy:.2f} % on this "
            f"copy of the test set ({data.source}: {data.notes.get('format', 'no notes')}), "
            f"{gap:+.2f} points from the {result.recorded_accuracy:.2f} % recorded when it "
            "was trained; its results here will differ from the book's. Retrain it "
            "(retrain=True or MNEMO_RETRAIN=1) for a model of this copy.",
            stacklevel=3,
        )
    return result


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


def _stored_model(
    path: Path,
    key: str,
    profile: Profile,
    num_classes: int,
    dev: torch.device,
    use_cache: bool,
    pretrained: bool,
) -> TrainResult | None:
    """The model of ``key`` from the cache file ``path`` or the shipped models, if any."""
    found = (
        load_checkpoint(path, key, profile, num_classes, dev, "cache")
        if use_cache and path.exists()
        else None
    )
    if found is None and pretrained:
        found = load_pretrained(key, profile, num_classes, dev)
    return found


def _train_new(
    profile: Profile,
    data: ImageData,
    seed: int,
    dev: torch.device,
    augment: Augment | None,
    progress: bool,
) -> TrainResult:
    """A model of ``profile`` trained on ``data`` from the initial weights and codes of ``seed``."""
    model = initial_model(profile, data.num_classes, seed)
    codes = initial_codes(profile, data, seed)
    return train_model(
        model,
        data.x_train,
        data.y_train,
        codes,
        profile,
        seed=seed,
        device=dev,
        augment=augment if augment is not None else profile_augment(profile),
        progress=progress,
        rehearse=False,  # a profile names its forget settings, and a loaded model has none
    )


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
    (``pretrained``), then trains and caches the result (``use_cache``). The codes carry their
    alignment record (:func:`~mnemo_tutorial.training.loop.record_alignment`), measured on
    ``data``'s training split when a stored model lacks one. ``retrain=True``
    skips both lookups; ``None`` reads ``MNEMO_RETRAIN``
    (:func:`mnemo_tutorial.env.retrain_requested`).
    ``augment`` defaults to the profile's. The caller's global random state is left as it was.

    Under ``torchrun`` (see :func:`train_model`) the key holds the number of processes, every
    rank loads or every rank trains, and only rank 0 writes the checkpoint.
    """
    if not isinstance(profile, Profile):
        raise ValueError(
            f"profile must be a Profile (see get_profile); got {type(profile).__name__}"
        )
    _check_seed(seed)
    retrain = retrain_requested() if retrain is None else bool(retrain)
    world = distributed.world_size()
    distributed.local_batch_size(
        profile.batch_size, world
    )  # a batch that does not split fails here
    dev = distributed.rank_device(get_device(device))
    key = checkpoint_key(profile, seed, data, world_size=world)
    path = cache_path(profile, data, key, root)
    if not retrain:
        found = _stored_model(path, key, profile, data.num_classes, dev, use_cache, pretrained)
        if distributed.all_agree(found is not None):
            found = check_shipped_accuracy(found, data)  # type: ignore[arg-type]
            if found.codes.alignment is None and profile.t_mix > 0:  # stored before records
                record_alignment(found, data.x_train, data.y_train)
            return found
    result = _train_new(profile, data, seed, dev, augment, progress)
    result.key = key
    if use_cache:
        if distributed.is_main():
            save_checkpoint(result, profile, seed, path)
        distributed.barrier()
        result.checkpoint = path
    return result
