"""Retraining from scratch without the forgotten classes (exact unlearning).

See :mod:`~mnemo_tutorial.methods.common` for what every baseline shares.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes, check_positive
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import ForgetResult
from mnemo_tutorial.env import retrain_requested
from mnemo_tutorial.methods.common import (
    _finish,
    _positive_int,
    _split,
    check_budget,
)
from mnemo_tutorial.training import checkpoints, loop
from mnemo_tutorial.training.data import ImageData, data_root
from mnemo_tutorial.training.profiles import Profile
from mnemo_tutorial.utils import isolated_rng, module_device

__all__ = [
    "retrain",
    "retrain_key",
]


def _initial_model(model: nn.Module, profile: Profile, num_classes: int, seed: int) -> nn.Module:
    """An untrained model of ``model``'s architecture with the initial weights the original
    had when it was trained from ``seed``
    (:func:`mnemo_tutorial.training.checkpoints.initial_model`); a model the profile cannot
    build is re-initialised layer by layer (``reset_parameters``)."""
    try:
        fresh = checkpoints.initial_model(profile, num_classes, seed)
    except (ValueError, TypeError):  # the profile builds another architecture
        fresh = None
    same = (
        fresh is not None
        and type(fresh) is type(model)
        and {k: v.shape for k, v in fresh.state_dict().items()}
        == {k: v.shape for k, v in model.state_dict().items()}
    )
    if same and fresh is not None:
        p = next(model.parameters(), None)
        return fresh.to(device=module_device(model), dtype=p.dtype if p is not None else None)
    fresh = copy.deepcopy(model)
    with isolated_rng(seed, module_device(model)):
        for m in fresh.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
    for p in fresh.parameters():
        p.grad = None
    return fresh


def _retrain_profile(profile: Profile, epochs: int | None, t_mix: float | None) -> Profile:
    """``profile`` with the given ``epochs`` and ``t_mix`` (each checked) in place of its own."""
    changes: dict[str, Any] = {}
    if epochs is not None:
        changes["epochs"] = _positive_int("epochs", epochs)
    if t_mix is not None:
        changes["t_mix"] = check_positive("t_mix", t_mix, allow_zero=True)
    return profile.replace(**changes) if changes else profile


def _retrain_path(
    profile: Profile, data: ImageData, key: str | None, root: str | None
) -> Path | None:
    """Where the retrained model of ``key`` lives in the data root's cache; None without a key."""
    return (
        data_root(root)
        / "checkpoints"
        / f"{data.name}-{profile.model}-{profile.name}-retrain-{key}.pt"
        if key
        else None
    )


def _train_without(
    new: nn.Module,
    data: ImageData,
    keep: torch.Tensor,
    codes: MnemonicCodes,
    profile: Profile,
    seed: int,
    target: torch.device,
    progress: bool,
) -> loop.TrainResult:
    """``new`` trained with ``profile`` on the training samples ``keep`` only."""
    return loop.train_model(
        new,
        data.x_train[keep],
        data.y_train[keep],
        codes,
        profile,
        seed=seed,
        device=target,
        augment=checkpoints.profile_augment(profile),
        progress=progress,
        rehearse=False,  # the reference is compared, never forgotten from
    )


def _retrain_details(
    profile: Profile,
    keep: torch.Tensor,
    result: loop.TrainResult,
    budget: str,
    key: str | None,
) -> dict[str, Any]:
    """The report's details of a retraining on the samples ``keep``."""
    return {
        "epochs": profile.epochs,
        "t_mix": profile.t_mix,
        "train_samples": int(keep.numel()),
        "profile": profile.name,
        "train_seconds": result.train_seconds,
        "budget": budget,
        "source": result.source,
        "key": key,
        "trained_on": result.trained_on,
    } | (
        {
            "recorded_accuracy": result.recorded_accuracy,
            "measured_accuracy": result.measured_accuracy,
        }
        if result.measured_accuracy is not None
        else {}
    )


def retrain(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    profile: Profile,
    seed: int = 0,
    *,
    budget: str = "quick",
    codes: MnemonicCodes | None = None,
    t_mix: float | None = None,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    root: str | None = None,
    use_cache: bool = True,
    pretrained: bool = True,
    fresh: bool | None = None,
) -> ForgetResult:
    """Retrain from scratch without the forgotten classes: the gold standard of exact
    unlearning (the model has provably never seen them). Reference: Bourtoule et al.,
    "Machine Unlearning", IEEE S&P 2021, and the retraining row of every paper compared here.

    A fresh model, with the original's initial weights for ``seed``, is trained by
    :func:`mnemo_tutorial.training.loop.train_model` with the training ``profile`` (``epochs``
    overrides its epoch count) on the training samples of the remaining classes only. Codes:
    mnemonic-code mixing is kept for the remaining classes (``t_mix`` defaults to
    ``profile.t_mix``; ``t_mix=0`` trains without codes), so the two models differ only in
    what unlearning is meant to remove. ``codes`` defaults to the codes drawn for ``seed``
    (same seed, same codes). The output layer keeps all ``data.num_classes`` outputs.
    ``budget`` does not change retraining (recorded in the report for uniformity). As in
    ``train_or_load``, a model of the profile's architecture is first looked up by
    :func:`retrain_key` in the data root's cache (``use_cache``, ``root``), then among the shipped
    models (``pretrained``); ``fresh=True`` (``None``: ``MNEMO_RETRAIN``) always trains. The
    report's details give ``source`` (trained/cache/pretrained) and ``train_seconds``, the
    recorded training time; ``seconds`` is the time of this call.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    profile = _retrain_profile(profile, epochs, t_mix)
    codes = codes if codes is not None else checkpoints.initial_codes(profile, data, seed)
    was_training, dev = model.training, module_device(model)
    fresh = retrain_requested() if fresh is None else bool(fresh)
    new = _initial_model(model, profile, data.num_classes, seed)
    _, keep = _split(data, classes)
    target = torch.device(device) if device is not None else dev
    key = (
        retrain_key(profile, seed, data, classes, codes)
        if _profile_builds(new, profile, data.num_classes)
        else None
    )
    path = _retrain_path(profile, data, key, root)
    result = (
        None
        if fresh
        else _stored_retrain(key, path, profile, data.num_classes, target, use_cache, pretrained)
    )
    if result is not None:
        result = checkpoints.check_shipped_accuracy(result, data)
    else:
        result = _train_without(new, data, keep, codes, profile, seed, target, progress)
        result.key = key or ""
        if path is not None and use_cache:  # path is set exactly when key is
            result.checkpoint = checkpoints.save_checkpoint(result, profile, seed, path)
    details = _retrain_details(profile, keep, result, budget, key)
    return _finish(result.model, was_training, "retrain", classes, t0, details)


def _stored_retrain(
    key: str | None,
    path: Any,
    profile: Profile,
    num_classes: int,
    device: torch.device,
    use_cache: bool,
    pretrained: bool,
) -> loop.TrainResult | None:
    """The retrained model of ``key`` from the cache file ``path`` or the shipped models, if any."""
    if not key:
        return None
    found = (
        checkpoints.load_checkpoint(path, key, profile, num_classes, device, "cache")
        if use_cache and path.exists()
        else None
    )
    if found is None and pretrained:
        found = checkpoints.load_pretrained(key, profile, num_classes, device)
    return found


def _profile_builds(new: nn.Module, profile: Profile, num_classes: int) -> bool:
    """Whether ``new`` is the architecture the profile builds (only those are cached/shipped)."""
    try:
        built = checkpoints.initial_model(profile, num_classes, 0)
    except (ValueError, TypeError):
        return False
    return type(built) is type(new) and {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in new.state_dict().items()
    }


def retrain_key(
    profile: Profile, seed: int, data: ImageData, classes: Sequence[int], codes: MnemonicCodes
) -> str:
    """16 hex digits of SHA-256 naming a model retrained without ``classes``: the training key
    of (profile, seed, data) (:func:`mnemo_tutorial.training.checkpoints.checkpoint_key`), the
    sorted classes and the codes' values (the retrained model mixes the remaining classes'
    codes)."""
    digest = hashlib.sha256()
    payload = {
        "train": checkpoints.checkpoint_key(profile, seed, data),
        "without": sorted(int(c) for c in classes),
    }
    digest.update(json.dumps(payload, sort_keys=True).encode())
    digest.update(codes.codes.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
