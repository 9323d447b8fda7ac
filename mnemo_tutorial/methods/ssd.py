"""Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024).

See :mod:`~mnemo_tutorial.methods.common` for what every baseline shares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes, check_positive
from mnemo_tutorial.core.fisher import (
    ParamDict,
    oracle_fisher,
    stable_cross_entropy,
)
from mnemo_tutorial.core.forget import ForgetResult
from mnemo_tutorial.methods.common import (
    _choice,
    _finish,
    _positive_int,
    _samples,
    _split,
    _start,
    _subsample,
    check_budget,
)
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.utils import isolated_rng, module_device

__all__ = [
    "SSD_IMPORTANCES",
    "SSD_ORDERS",
    "ssd",
    "ssd_indices",
]

SSD_IMPORTANCES = ("batch", "fisher")
SSD_ORDERS = ("sorted", "shuffled")


def _batch_importance(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> ParamDict:
    """SSD's importance: the squared gradient of each mini-batch's mean loss, averaged over
    the ``ceil(N / batch_size)`` batches of (x, y) taken in the given order. {name: param_shape}."""
    model.eval()
    dev = module_device(model)
    names, params = zip(*model.named_parameters())
    total = [torch.zeros_like(p) for p in params]
    batches = 0
    for start in range(0, y.numel(), batch_size):
        loss = stable_cross_entropy(
            model(x[start : start + batch_size].to(dev)), y[start : start + batch_size].to(dev)
        )
        for t, g in zip(total, torch.autograd.grad(loss, params)):
            t += g.square()
        batches += 1
    return {k: t / max(1, batches) for k, t in zip(names, total)}


def ssd_indices(
    data: ImageData,
    classes: Sequence[int],
    order: str,
    gen: torch.Generator,
    n_f: int | None = None,
    n_d: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample indices of SSD's forget loader and full-data loader, in loader order.

    ``order="sorted"`` (the authors' ``forget_full_class_main.py``): the forget set in dataset
    order, and the full data as the retained classes one after another (class 0, 1, ...,
    each in dataset order) followed by the forget set, unshuffled; nearly every batch then
    holds a single class. ``order="shuffled"`` (ours): both shuffled with ``gen``.
    ``n_f``/``n_d``: random subsets (kept in loader order) for the per-sample variant.
    """
    f_idx, _ = _split(data, classes)
    if order == "shuffled":
        return _subsample(f_idx, n_f, gen), _subsample(torch.arange(data.y_train.numel()), n_d, gen)
    retained = [
        torch.nonzero(data.y_train == c).flatten()
        for c in range(data.num_classes)
        if c not in classes
    ]
    full = torch.cat([*retained, f_idx])
    pick_f = _subsample(torch.arange(f_idx.numel()), n_f, gen).sort().values
    pick_d = _subsample(torch.arange(full.numel()), n_d, gen).sort().values
    return f_idx[pick_f], full[pick_d]


def _dampen(model: nn.Module, i_f: ParamDict, i_d: ParamDict, alpha: float, lam: float) -> int:
    """SSD's step in place: every parameter with I_f > alpha * I_D is multiplied by
    min(lam * I_D / I_f, 1). Returns how many were dampened."""
    selected = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            sel = i_f[name] > alpha * i_d[name]  # implies I_f > 0
            beta = torch.clamp(
                lam * i_d[name] / torch.where(sel, i_f[name], torch.ones_like(i_f[name])), max=1.0
            )
            p.mul_(torch.where(sel, beta, torch.ones_like(beta)).to(p.dtype))
            selected += int(sel.sum())
    return selected


def _importances(
    new: nn.Module,
    data: ImageData,
    fi: torch.Tensor,
    di: torch.Tensor,
    per_sample: bool,
    batch_size: int,
) -> tuple[ParamDict, ParamDict]:
    """(I_f, I_D) on the training samples ``fi`` and ``di``: per-sample Fisher or batch SSD."""
    if per_sample:
        new.eval()
        i_f = oracle_fisher(new, data.x_train[fi], data.y_train[fi], batch_size=batch_size)
        i_d = oracle_fisher(new, data.x_train[di], data.y_train[di], batch_size=batch_size)
    else:
        i_f = _batch_importance(new, data.x_train[fi], data.y_train[fi], batch_size)
        i_d = _batch_importance(new, data.x_train[di], data.y_train[di], batch_size)
    return i_f, i_d


def ssd(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    alpha: float = 10.0,
    lam: float = 1.0,
    order: str = "sorted",
    importance: str = "batch",
    batch_size: int = 64,
    forget_samples: int | None | str = "default",
    data_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024; reference:
    ``if-loops/selective-synaptic-dampening``, ``src/ssd.py`` and
    ``src/forget_full_class_main.py``).

    Two importances per parameter: ``I_f`` on the forget set and ``I_D`` on the full training
    data. Every parameter with ``I_f > alpha * I_D`` is multiplied by
    ``min(lam * I_D / I_f, 1)``; the others are left alone. ``alpha=10``, ``lam=1`` are the
    authors' defaults for full-class forgetting (their benchmarks have 20-105 classes).

    ``importance="batch"`` (the authors'): the squared gradient of each mini-batch's mean loss
    (batch 64), averaged over batches, over all the training data, model in eval mode. ``order``
    of the loaders (:func:`ssd_indices`): ``"sorted"`` (default, the authors'; I_f / I_D then
    stays below about N / N_f, ~10 for one MNIST class, so alpha = 10 selects nothing that
    matters) or ``"shuffled"`` (ours: in mixed batches the mean gradients partly cancel, which
    lets the ratio pass that ceiling and makes SSD forget on MNIST).
    ``importance="fisher"`` (ours): the per-sample empirical Fisher over ``forget_samples`` /
    ``data_samples`` (quick: 1,000 / 4,000; full: all); its ratio is bounded by N / N_f exactly.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    check_positive("alpha", alpha)
    check_positive("lam", lam, allow_zero=True)
    _choice("importance", importance, SSD_IMPORTANCES)
    _choice("order", order, SSD_ORDERS)
    batch_size = _positive_int("batch_size", batch_size)
    per_sample = importance == "fisher"
    n_f = _samples(forget_samples, "ssd_forget", budget if per_sample else "full")
    n_d = _samples(data_samples, "ssd_data", budget if per_sample else "full")
    new, was_training, dev = _start(model)
    with isolated_rng(seed, dev) as gen:
        fi, di = ssd_indices(data, classes, order, gen, n_f, n_d)
        i_f, i_d = _importances(new, data, fi, di, per_sample, batch_size)
    selected, total = _dampen(new, i_f, i_d, alpha, lam), sum(p.numel() for p in new.parameters())
    details = {
        "alpha": alpha,
        "lambda": lam,
        "order": order,
        "importance": importance,
        "batch_size": batch_size,
        "forget_samples": int(fi.numel()),
        "data_samples": int(di.numel()),
        "budget": budget,
        "dampened_params": selected,
        "dampened_fraction": selected / max(1, total),
        "variant": "reference" if (order, importance) == ("sorted", "batch") else "ours",
    }
    return _finish(new, was_training, "ssd", classes, t0, details)
