"""UNSIR: error-maximising noise, impair and repair (Tarun et al., IEEE TNNLS 2023).

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
    _batches,
    _choice,
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
    "UNSIR_INITS",
    "UNSIR_PENALTIES",
    "unsir",
]

UNSIR_INITS = ("normal", "uniform")
UNSIR_PENALTIES = ("sum", "mean")


def _unsir_noise(
    new, classes, input_shape, s, gen, dev, progress
) -> tuple[torch.Tensor, torch.Tensor]:
    """UNSIR step 1: error-maximising noise (N, *input_shape) and its labels, model frozen."""
    new.eval()
    frozen = [p.requires_grad for p in new.parameters()]
    for p in new.parameters():
        p.requires_grad_(False)
    y = torch.as_tensor(classes, device=dev).repeat_interleave(s["noise_samples"])
    draw = torch.randn if s["noise_init"] == "normal" else torch.rand
    noise = draw((y.numel(), *input_shape), generator=gen).to(dev).requires_grad_(True)
    opt = torch.optim.Adam([noise], lr=s["noise_lr"])
    for _ in tqdm(range(s["noise_steps"]), desc="unsir noise", disable=not progress):
        sq = (
            noise.square().flatten(1).sum(1).mean()
            if s["penalty"] == "sum"
            else noise.square().mean()
        )
        _step(opt, -nn.functional.cross_entropy(new(noise), y) + s["noise_reg"] * sq)
    for p, req in zip(new.parameters(), frozen):
        p.requires_grad_(req)
    return noise.detach(), y


def _unsir_epochs(new, data, subset, noise, noise_y, s, gen, dev, progress) -> None:
    """UNSIR steps 2 and 3: one impair epoch (retained + noise) and one repair epoch."""
    new.train()
    for phase, lr in (("impair", s["impair_lr"]), ("repair", s["repair_lr"])):
        opt = torch.optim.Adam(new.parameters(), lr=lr)
        for idx in tqdm(
            list(_batches(subset, s["batch_size"], gen)),
            desc=f"unsir {phase}",
            disable=not progress,
        ):
            xb, yb = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
            if phase == "impair":
                pick = torch.randint(
                    noise.shape[0], (min(s["batch_size"], noise.shape[0]),), generator=gen
                ).to(dev)
                xb, yb = torch.cat([xb, noise[pick]]), torch.cat([yb, noise_y[pick]])
            _step(opt, nn.functional.cross_entropy(new(xb), yb))


def _unsir_settings(
    noise_samples: int,
    noise_steps: int,
    noise_lr: float,
    noise_reg: float,
    noise_init: str,
    penalty: str,
    impair_lr: float,
    repair_lr: float,
    batch_size: int,
) -> dict[str, Any]:
    """UNSIR's settings, checked, as the dict the steps read and the report records."""
    for name, v in (("noise_lr", noise_lr), ("impair_lr", impair_lr), ("repair_lr", repair_lr)):
        check_positive(name, v)
    _choice("noise_init", noise_init, UNSIR_INITS)
    _choice("penalty", penalty, UNSIR_PENALTIES)
    if isinstance(noise_steps, bool) or int(noise_steps) < 0:
        raise ValueError(f"noise_steps must be an integer >= 0; got {noise_steps!r}")
    return {
        "noise_samples": _positive_int("noise_samples", noise_samples),
        "noise_steps": int(noise_steps),
        "noise_lr": noise_lr,
        "noise_reg": check_positive("noise_reg", noise_reg, allow_zero=True),
        "noise_init": noise_init,
        "penalty": penalty,
        "impair_lr": impair_lr,
        "repair_lr": repair_lr,
        "batch_size": _positive_int("batch_size", batch_size),
    }


def _unsir_details(
    s: dict[str, Any], noise_loss: float, subset: torch.Tensor, budget: str
) -> dict[str, Any]:
    """The report's details: the settings ``s``, the noise's loss and the data used."""
    return {
        **s,
        "noise_loss": noise_loss,
        "retain_samples": int(subset.numel()),
        "budget": budget,
        "variant": "reference" if (s["noise_init"], s["penalty"]) == ("normal", "sum") else "ours",
    }


def unsir(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    noise_samples: int = 64,
    noise_steps: int = 50,
    noise_lr: float = 0.1,
    noise_reg: float = 0.1,
    noise_init: str = "normal",
    penalty: str = "sum",
    impair_lr: float = 0.02,
    repair_lr: float = 0.01,
    batch_size: int = 128,
    retain_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """UNSIR / FastMU (Tarun, Chundawat, Mandal, Kankanhalli, "Fast Yet Effective Machine
    Unlearning", IEEE TNNLS 2023; reference: ``vikram2000b/Fast-Machine-Unlearning``
    ``Machine Unlearning.ipynb``).

    1. Error-maximising noise: ``noise_samples`` input-shaped tensors per forgotten class,
       drawn from N(0, 1) (``noise_init="normal"``, the reference; ``"uniform"``: ours,
       U[0, 1)), labelled with that class and optimised with Adam (``noise_lr``, ``noise_steps``
       steps, model frozen) to maximise the loss, with the penalty ``noise_reg`` times the
       batch mean of each noise tensor's *sum* of squares (``penalty="sum"``, the reference;
       ``"mean"``: ours, the mean over all elements, 784x weaker on MNIST).
    2. Impair: one epoch over ``retain_samples`` retained samples (quick: 6,000; full: all),
       each batch joined by noise samples (Adam, lr ``impair_lr=0.02``, the reference's).
    3. Repair: one epoch over the retained samples alone (Adam, lr ``repair_lr=0.01``).

    Sizes (ours; the reference: 256 tensors, 40 steps): 64 noise tensors per class, 50 steps.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    s = _unsir_settings(
        noise_samples,
        noise_steps,
        noise_lr,
        noise_reg,
        noise_init,
        penalty,
        impair_lr,
        repair_lr,
        batch_size,
    )
    n_r = _samples(retain_samples, "unsir_retain", budget)
    new, was_training, dev = _start(model)
    _, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        noise, noise_y = _unsir_noise(new, classes, data.input_shape, s, gen, dev, progress)
        with torch.no_grad():
            noise_loss = float(nn.functional.cross_entropy(new(noise), noise_y))
        subset = _subsample(keep, n_r, gen)
        _unsir_epochs(new, data, subset, noise, noise_y, s, gen, dev, progress)
    details = _unsir_details(s, noise_loss, subset, budget)
    return _finish(new, was_training, "unsir", classes, t0, details)
