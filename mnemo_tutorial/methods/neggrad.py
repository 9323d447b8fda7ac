"""NegGrad: gradient ascent on the forgotten samples.

See :mod:`~mnemo_tutorial.methods.common` for what every baseline shares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from mnemo_tutorial.checks import check_forget_classes, check_positive
from mnemo_tutorial.core.fisher import (
    stable_cross_entropy,
)
from mnemo_tutorial.core.forget import ForgetResult
from mnemo_tutorial.methods.common import (
    _batches,
    _finish,
    _positive_int,
    _samples,
    _split,
    _start,
    _step,
    _subsample,
    check_budget,
)
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.utils import isolated_rng

__all__ = [
    "neggrad",
]


def _neggrad_loop(new, data, f_idx, keep, s, gen, dev, progress) -> tuple[int, bool, float]:
    """The ascent loop of :func:`neggrad`; returns (steps, stopped early, last batch error)."""
    opt = torch.optim.SGD(new.parameters(), lr=s["lr"], momentum=s["momentum"])
    w = s["retain_weight"]
    steps, err = 0, 0.0
    new.train()
    for _ in range(s["max_epochs"]):
        batches = list(_batches(_subsample(f_idx, s["forget_samples"], gen), s["batch_size"], gen))
        for idx in tqdm(batches, desc="neggrad", disable=not progress):
            xb, yb = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
            logits = new(xb)
            err = float((logits.argmax(1) != yb).float().mean())
            if err >= s["stop_error"]:
                return steps, True, err
            loss = -(1.0 - w) * stable_cross_entropy(logits, yb)
            if w > 0:
                r = keep[torch.randint(keep.numel(), (s["batch_size"],), generator=gen)]
                loss = loss + w * nn.functional.cross_entropy(
                    new(data.x_train[r].to(dev)), data.y_train[r].to(dev)
                )
            _step(opt, loss)
            steps += 1
    return steps, False, err


def neggrad(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 128,
    max_epochs: int = 5,
    retain_weight: float = 0.0,
    stop_error: float = 1.0,
    forget_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """NegGrad: gradient *ascent* on the forgotten classes' training data (the "NegGrad"
    baseline of Golatkar et al., CVPR 2020; Thudi et al., EuroS&P 2022). With
    ``retain_weight > 0`` each step also descends on a batch of retained data, minimising
    ``retain_weight * CE(retain) - (1 - retain_weight) * CE(forget)`` ("NegGrad+",
    Kurmanji et al., NeurIPS 2023, ``meghdadk/SCRUB``). Neither reference repository of this
    comparison has a NegGrad implementation.

    Defaults (ours): SGD lr 0.05, momentum 0.9, batches of 128 forget samples drawn from
    ``forget_samples`` of them (quick: 2,000; full: all), at most ``max_epochs=5`` passes,
    pure ascent. **Stop rule (ours, not from a reference):** ascent is unbounded, so it stops
    as soon as the error on the current forget batch reaches ``stop_error`` (1.0 = every
    sample of the batch misclassified); it uses training data only.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    check_positive("lr", lr)
    if not 0.0 <= retain_weight < 1.0:
        raise ValueError(f"retain_weight must be in [0, 1); got {retain_weight!r}")
    if not 0.0 < stop_error <= 1.0:
        raise ValueError(f"stop_error must be in (0, 1]; got {stop_error!r}")
    s = {
        "lr": lr,
        "momentum": momentum,
        "batch_size": _positive_int("batch_size", batch_size),
        "max_epochs": _positive_int("max_epochs", max_epochs),
        "retain_weight": float(retain_weight),
        "stop_error": float(stop_error),
        "forget_samples": _samples(forget_samples, "neggrad_forget", budget),
    }
    new, was_training, dev = _start(model)
    f_idx, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        steps, stopped, err = _neggrad_loop(new, data, f_idx, keep, s, gen, dev, progress)
    details = {
        **s,
        "steps": steps,
        "stopped_early": stopped,
        "last_forget_batch_error": err,
        "budget": budget,
        "stop_rule": "ours: stop when a forget training batch is all misclassified",
    }
    return _finish(new, was_training, "neggrad", classes, t0, details)
