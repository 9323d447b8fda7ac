"""One training loop for every chapter, with mnemonic-code mixing and a checkpoint cache."""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .codes import MnemonicCodes
from .data import ImageData, data_root
from .models import make_model
from .profiles import Profile
from .utils import atomic_path, get_device, seed_everything

CHECKPOINT_FORMAT = 2
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class TrainResult:
    """A trained model with its codes, the training time and the per-epoch history."""

    model: nn.Module
    codes: MnemonicCodes
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"
    checkpoint: Path | None = None
    from_cache: bool = False


def _optimizer(model: nn.Module, profile: Profile) -> torch.optim.Optimizer:
    if profile.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=profile.lr, momentum=profile.momentum, weight_decay=profile.weight_decay)
    if profile.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=profile.lr, weight_decay=profile.weight_decay)
    if profile.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=profile.lr, weight_decay=profile.weight_decay)
    raise ValueError(f"profile.optimizer must be 'sgd', 'adam' or 'adamw'; got {profile.optimizer!r}")


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    codes: MnemonicCodes,
    profile: Profile,
    seed: int = 0,
    device: str | torch.device | None = None,
    augment: Augment | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place on (x (N, *input_shape), y (N,)) with code mixing.

    Each epoch shuffles the data, applies ``augment`` to the real samples, then swaps each
    sample for its class's code with probability ``profile.t_mix`` (codes are never
    augmented). Mixed precision (bfloat16) on CUDA. Seeded through ``seed``.
    """
    if profile.epochs < 1:
        raise ValueError(f"epochs must be a positive integer; got {profile.epochs!r}")
    dev = get_device(device)
    gen = seed_everything(seed)
    model.to(dev).train()
    x_dev, y_dev = x.to(dev), y.to(dev)
    codes_dev = codes.to(dev)
    opt = _optimizer(model, profile)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / profile.batch_size)
    total = steps_per_epoch * profile.epochs
    sched = (
        torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        if profile.schedule == "cosine"
        else None
    )
    amp = dev.type == "cuda"
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(range(profile.epochs), desc=f"train {profile.dataset}/{profile.name}", disable=not progress)
    for epoch in bar:
        perm = torch.randperm(n, generator=gen).to(dev)
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, n, profile.batch_size):
            idx = perm[start : start + profile.batch_size]
            xb, yb = x_dev[idx], y_dev[idx]
            if augment is not None:
                xb = augment(xb, gen)
            xb, _ = codes_dev.mix_batch(xb, yb, profile.t_mix, gen)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.item() * yb.shape[0]
            correct += int((logits.argmax(1) == yb).sum())
            seen += yb.shape[0]
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": 100.0 * correct / seen})
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100.0 * correct / seen:.1f}")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    model.eval()
    opt.zero_grad(set_to_none=True)
    return TrainResult(model=model, codes=codes, train_seconds=seconds, history=history, device=str(dev))


def checkpoint_key(profile: Profile, seed: int, data: ImageData) -> str:
    """Hash of every setting that changes the trained weights."""
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
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def train_or_load(
    profile: Profile,
    data: ImageData,
    seed: int = 0,
    root: str | Path | None = None,
    device: str | torch.device | None = None,
    augment: Augment | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> TrainResult:
    """Load the cached checkpoint for (profile, seed, data) from ``<root>/checkpoints``, or
    train one (codes drawn from ``seed``) and cache it. ``train_seconds`` of a cached model
    is the time recorded when it was trained."""
    dev = get_device(device)
    if augment is None and profile.augment:
        from .augment import random_crop_flip

        augment = random_crop_flip
    path = data_root(root) / "checkpoints" / f"{data.name}-{profile.model}-{profile.name}-{checkpoint_key(profile, seed, data)}.pt"
    seed_everything(seed)  # the initial weights depend on the seed alone
    model = make_model(profile.model, num_classes=data.num_classes, **profile.model_options())
    if use_cache and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        model.to(dev).eval()
        return TrainResult(
            model=model,
            codes=MnemonicCodes.from_state_dict(state["codes"]),
            train_seconds=float(state["train_seconds"]),
            history=state.get("history", []),
            device=state.get("device", "unknown"),
            checkpoint=path,
            from_cache=True,
        )
    codes = MnemonicCodes.random(data.num_classes, data.input_shape, seed=seed, distribution=profile.code_dist)
    result = train_model(model, data.x_train, data.y_train, codes, profile, seed=seed, device=dev, augment=augment, progress=progress)
    state: dict[str, Any] = {
        "model": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "codes": codes.state_dict(),
        "train_seconds": result.train_seconds,
        "history": result.history,
        "device": result.device,
        "profile": profile.key_dict(),
        "seed": seed,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    result.checkpoint = path
    return result
