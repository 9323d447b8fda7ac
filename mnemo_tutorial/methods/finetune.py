"""Fine-tuning on the retained data.

See :mod:`~mnemo_tutorial.methods.common` for what every baseline shares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mnemo_tutorial.checks import check_forget_classes, check_positive
from mnemo_tutorial.core.forget import ForgetResult
from mnemo_tutorial.methods.common import (
    FINETUNE_SCHEDULES,
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
    "finetune",
]


def _finetune_schedule(
    budget: str,
    epochs: int | None,
    lr: float | None,
    momentum: float | None,
    weight_decay: float | None,
    batch_size: int | None,
) -> dict[str, Any]:
    """The ``budget``'s schedule with the given settings in place of its own, checked."""
    s = dict(FINETUNE_SCHEDULES[check_budget(budget)])
    given = {
        "epochs": epochs,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
    }
    s.update({k: v for k, v in given.items() if v is not None})
    s["epochs"], s["batch_size"] = (
        _positive_int("epochs", s["epochs"]),
        _positive_int("batch_size", s["batch_size"]),
    )
    check_positive("lr", s["lr"])
    return s


def _finetune_epochs(
    new: nn.Module,
    data: ImageData,
    keep: torch.Tensor,
    n_keep: int | None,
    s: dict[str, Any],
    gen: torch.Generator,
    dev: torch.device,
    progress: bool,
) -> int:
    """SGD on ``n_keep`` of the retained samples ``keep``, drawn afresh each epoch; the steps."""
    opt = torch.optim.SGD(
        new.parameters(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"]
    )
    new.train()
    steps = 0
    for _ in tqdm(range(s["epochs"]), desc="fine-tune", disable=not progress):
        for idx in _batches(_subsample(keep, n_keep, gen), s["batch_size"], gen):
            _step(
                opt,
                nn.functional.cross_entropy(
                    new(data.x_train[idx].to(dev)), data.y_train[idx].to(dev)
                ),
            )
            steps += 1
    return steps


def finetune(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    epochs: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    batch_size: int | None = None,
    retain_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """Fine-tune on the retained data only and rely on catastrophic forgetting of the
    forgotten classes ("Fine-tune" baseline of Golatkar et al., CVPR 2020, and of Foster et
    al., AAAI 2024; reference: ``if-loops/selective-synaptic-dampening``,
    ``forget_full_class_strategies.py::finetune`` with ``src/utils.py::fit_one_cycle``).

    ``budget="full"`` is the reference: 5 epochs of SGD (lr 0.02, momentum 0.9, weight decay
    5e-4, batch 64) over all retained samples, reshuffled each epoch. ``budget="quick"`` is
    ours: 2 epochs (lr 0.02, momentum 0.9, no weight decay, batch 128) over 20,000 retained
    samples drawn afresh each epoch. Every setting can be overridden.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    s = _finetune_schedule(budget, epochs, lr, momentum, weight_decay, batch_size)
    n_keep = _samples(retain_samples, "finetune_retain", budget)
    new, was_training, dev = _start(model)
    _, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        steps = _finetune_epochs(new, data, keep, n_keep, s, gen, dev, progress)
    details = {
        **s,
        "steps": steps,
        "retain_samples": n_keep,
        "budget": budget,
        "schedule": "reference (SSD repository)" if budget == "full" else "ours (quick)",
    }
    return _finish(new, was_training, "finetune", classes, t0, details)
