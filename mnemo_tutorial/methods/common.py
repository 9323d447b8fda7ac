"""What every baseline shares: budgets, data splits, the copy-and-report frame, batches.

Every baseline has the signature::

    result = ssd(model, data, classes, seed=0, budget="quick", ..., progress=False)

(``retrain`` also takes the training ``profile`` after ``classes``) and returns a
:class:`~mnemo_tutorial.core.forget.ForgetResult` whose report has ``method`` = the baseline's
name, ``status`` ("ok") and ``details`` (the settings used, the reference followed, counts).
The input model is never modified: each method works on a deep copy, restores the input's
train/eval mode on both models and leaves no ``.grad`` behind. ``seconds`` is the wall clock
of the whole call (copy included). Every draw comes from a generator seeded with ``seed``
inside :func:`mnemo_tutorial.utils.isolated_rng`.

Budgets (``budget``): ``"full"`` runs each baseline with the data and epoch budget of its
reference; ``"quick"`` (the default, CPU-friendly) draws the random subsets of the training
data whose sizes are in :data:`QUICK_BUDGETS` and, for fine-tuning, runs our shorter schedule.
Every budget can also be set explicitly per call (an int, or ``None`` for all the data).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from mnemo_tutorial.core.forget import ForgetReport, ForgetResult
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.utils import module_device

__all__ = [
    "BUDGETS",
    "FINETUNE_SCHEDULES",
    "QUICK_BUDGETS",
    "check_budget",
    "make_report",
]

BUDGETS: tuple[str, ...] = ("quick", "full")

# Data budgets (number of training samples) under budget="quick". ``None`` = all.
QUICK_BUDGETS: dict[str, int] = {
    "ssd_forget": 1000,  # forget-set samples for SSD's I_f (importance="fisher" only)
    "ssd_data": 4000,  # training samples (all classes) for SSD's I_D (importance="fisher" only)
    "fisher_retain": 4000,  # retained samples for the Fisher of Fisher forgetting
    "unsir_retain": 6000,  # retained samples for UNSIR's impair and repair epochs
    "finetune_retain": 20000,  # retained samples per fine-tuning epoch
    "neggrad_forget": 2000,  # forget-set samples NegGrad ascends on
}

# Fine-tuning schedules. "full": the SSD repository's finetune (5 epochs of SGD lr 0.02,
# momentum 0.9, weight decay 5e-4, batch 64, over all retained data: src/utils.py
# fit_one_cycle); "quick": ours (2 shorter epochs, no weight decay), labelled as such.
FINETUNE_SCHEDULES: dict[str, dict[str, Any]] = {
    "full": {"epochs": 5, "lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 64},
    "quick": {"epochs": 2, "lr": 0.02, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128},
}


def check_budget(budget: str) -> str:
    """``budget`` if it is one of :data:`BUDGETS`, else a one-line ValueError."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    return budget


def _samples(value: int | None | str, key: str, budget: str) -> int | None:
    """Resolve a data budget: ``"default"`` -> ``QUICK_BUDGETS[key]`` under budget="quick"
    and ``None`` (all the data) under "full"; ``None`` -> all; an int -> that many."""
    if isinstance(value, str):
        if value != "default":
            raise ValueError(f"{key} must be a positive integer, None or 'default'; got {value!r}")
        return QUICK_BUDGETS[key] if budget == "quick" else None
    if value is None:
        return None
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{key} must be a positive integer, None or 'default'; got {value!r}")
    return int(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _subsample(idx: torch.Tensor, k: int | None, gen: torch.Generator) -> torch.Tensor:
    """A random subset of ``k`` indices of ``idx`` (all of them, shuffled, when k is None)."""
    perm = idx[torch.randperm(idx.numel(), generator=gen)]
    return perm if k is None else perm[:k]


def _split(data: ImageData, classes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into the training split, in dataset order) of the forgotten and retained samples."""
    is_f = torch.isin(data.y_train, torch.as_tensor(list(classes), dtype=data.y_train.dtype))
    return torch.nonzero(is_f).flatten(), torch.nonzero(~is_f).flatten()


def _start(model: nn.Module) -> tuple[nn.Module, bool, torch.device]:
    """A deep copy of ``model`` without gradients, the input's mode and its device."""
    new = copy.deepcopy(model)
    for p in new.parameters():
        p.grad = None
    return new, model.training, module_device(model)


def make_report(
    method: str, classes: list[int], seconds: float, details: dict, status: str = "ok"
) -> ForgetReport:
    """A :class:`ForgetReport` for a baseline (the mnemonic-only fields left at their defaults)."""
    return ForgetReport(
        method=method, forget=classes, seconds=seconds, status=status, details=details
    )


def _finish(
    new: nn.Module, was_training: bool, method: str, classes: list[int], t0: float, details: dict
) -> ForgetResult:
    """Clear gradients, restore the input's mode on the new model and wrap up the report."""
    for p in new.parameters():
        p.grad = None
    new.train(was_training)
    if module_device(new).type == "cuda":
        torch.cuda.synchronize()
    return ForgetResult(new, make_report(method, classes, time.perf_counter() - t0, details))


def _batches(
    idx: torch.Tensor, batch_size: int, gen: torch.Generator | None
) -> Iterator[torch.Tensor]:
    """Mini-batches of ``idx``: shuffled with ``gen``, or in the given order when gen is None."""
    perm = idx if gen is None else idx[torch.randperm(idx.numel(), generator=gen)]
    for start in range(0, perm.numel(), batch_size):
        yield perm[start : start + batch_size]


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
