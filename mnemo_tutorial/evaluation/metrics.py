"""Metrics of the paper (E_F, A_R), per-class accuracy, confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch
from sklearn.metrics import confusion_matrix as _sk_confusion
from sklearn.metrics import roc_auc_score
from torch import nn

from mnemo_tutorial.utils import module_device

__all__ = [
    "batched_eval",
    "class_mask",
    "confusion_matrix",
    "eval_batch_size",
    "evaluate",
    "forget_metrics",
    "ForgetMetrics",
    "membership_inference_auc",
    "per_class_accuracy",
    "per_sample_loss",
    "predict",
    "sample_indices",
    "split_logits",
    "SplitLogits",
]


@torch.no_grad()
def batched_eval(
    model: nn.Module,
    fn: Callable[..., torch.Tensor],
    *tensors: torch.Tensor,
    batch_size: int | None = None,
) -> torch.Tensor:
    """``fn(*batch)`` over slices of ``tensors`` (all (N, ...)), with ``model`` in eval mode and
    without gradients; each slice is moved to the model's device first. Returns the results
    concatenated on the CPU, (N, ...). The model's mode is restored, also on error.

    The one loop behind :func:`predict`, :func:`per_sample_loss` and
    :func:`mnemo_tutorial.evaluation.audits.extract_features`. ``batch_size`` defaults to
    :func:`eval_batch_size` of the model's device.
    """
    if batch_size is None:
        batch_size = eval_batch_size(module_device(model))
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(
            f"tensors must have the same first dimension; got {[t.shape[0] for t in tensors]}"
        )
    was_training = model.training
    model.eval()
    device = module_device(model)
    out = []
    try:
        for start in range(
            0, max(n, 1), int(batch_size)
        ):  # one (empty) call when n == 0: right dtype
            out.append(fn(*(t[start : start + batch_size].to(device) for t in tensors)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


@dataclass(frozen=True)
class SplitLogits:
    """A model's logits on the whole training split (``train``, (N_train, C)) and the whole
    test split (``test``), float32 on the CPU: computed once by :func:`split_logits` and read
    by every measure that needs all samples (the benchmark's E_F, A_R and train-split
    accuracies, the entropy attack), instead of one forward pass over the data per measure."""

    train: torch.Tensor
    test: torch.Tensor


def split_logits(model: nn.Module, data: Any) -> SplitLogits:
    """:class:`SplitLogits` of ``model`` on ``data`` (an ``ImageData``); the model's mode is
    restored."""
    return SplitLogits(
        train=batched_eval(model, model, data.x_train), test=batched_eval(model, model, data.x_test)
    )


def class_mask(y: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """(N,) bool on the CPU: which labels y (N,) (any device) are in ``classes``."""
    y = y.cpu()
    return torch.isin(y, torch.as_tensor(list(classes), dtype=y.dtype))


def sample_indices(mask: torch.Tensor, k: int | None, generator: torch.Generator) -> torch.Tensor:
    """Up to ``k`` random CPU indices where ``mask`` (N,) is True, drawn from ``generator`` (a
    CPU generator); all of them, shuffled, if k is None. The one index-sampling helper of the
    audits (the baselines' ``_subsample`` of ``nonzero(mask)`` draws the same indices)."""
    idx = torch.nonzero(mask.cpu()).flatten()
    idx = idx[torch.randperm(idx.numel(), generator=generator)]
    return idx if k is None else idx[:k]


def eval_batch_size(device: torch.device) -> int:
    """Default evaluation batch: 256 on the CPU, 2048 on an accelerator. On the CPU, large
    batches of convolutional activations cost more in page faults than they save (CIFAR-10
    ResNet, one thread, 3,000 images: 0.7 s system time at 256, 1.8 s at 2048)."""
    return 256 if torch.device(device).type == "cpu" else 2048


def predict(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Predicted classes (N,) int64 on CPU for inputs x (N, *input_shape) on any device; the
    model's mode is restored."""
    return batched_eval(model, lambda xb: model(xb).argmax(1), x, batch_size=batch_size)


def per_class_accuracy(preds: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy in percent for each class (NaN for a class without samples); preds (N,), y (N,)."""
    preds, y = preds.cpu(), y.cpu()
    correct = torch.bincount(y[preds == y], minlength=num_classes).double()
    total = torch.bincount(y, minlength=num_classes).double()
    acc = torch.where(
        total > 0, 100.0 * correct / total.clamp(min=1), torch.full_like(total, float("nan"))
    )
    return [float(a) for a in acc]


class ForgetMetrics(TypedDict):
    """What :func:`forget_metrics` and :func:`evaluate` return (a plain dict; all in %)."""

    E_F: float
    A_R: float
    accuracy: float
    per_class: list[float]


def forget_metrics(
    preds: torch.Tensor, y: torch.Tensor, forget: Sequence[int], num_classes: int
) -> ForgetMetrics:
    """E_F (test error on the forgotten classes, %), A_R (accuracy on the rest, %),
    overall accuracy (%) and per-class accuracy (%) from predictions (N,) and labels (N,)."""
    preds, y = preds.cpu(), y.cpu()
    fset = torch.zeros(num_classes, dtype=torch.bool)
    if len(forget):
        fset[torch.as_tensor(list(forget))] = True
    is_f = fset[y]
    correct = preds == y
    e_f = 100.0 * (1.0 - correct[is_f].double().mean().item()) if is_f.any() else float("nan")
    a_r = 100.0 * correct[~is_f].double().mean().item() if (~is_f).any() else float("nan")
    return {
        "E_F": e_f,
        "A_R": a_r,
        "accuracy": 100.0 * correct.double().mean().item(),
        "per_class": per_class_accuracy(preds, y, num_classes),
    }


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    forget: Sequence[int] = (),
    num_classes: int | None = None,
) -> ForgetMetrics:
    """E_F, A_R, accuracy and per-class accuracy (all in %) of ``model`` on x (N, *input_shape),
    y (N,) (any device).

    ``num_classes`` is required (e.g. ``data.num_classes``): inferring it from ``y`` would be
    wrong for a split that lacks the last class.
    """
    if num_classes is None or isinstance(num_classes, bool) or int(num_classes) < 1:
        raise ValueError(
            "num_classes must be the dataset's number of classes (e.g. data.num_classes); "
            f"got {num_classes!r}"
        )
    num_classes = int(num_classes)
    bad = [c for c in forget if not 0 <= int(c) < num_classes]
    if bad:
        raise ValueError(f"forget must be class indices in 0..{num_classes - 1}; got {bad[0]}")
    return forget_metrics(predict(model, x), y.cpu(), forget, num_classes)


def confusion_matrix(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int
) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    return _sk_confusion(
        y.cpu().numpy(), predict(model, x).numpy(), labels=list(range(int(num_classes)))
    )


def per_sample_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """Cross-entropy of each sample, (N,) float32 on CPU, for x (N, *input_shape) and y (N,) on
    any device; the model's mode is restored."""

    def loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(xb).float(), yb, reduction="none")

    return batched_eval(model, loss, x, y, batch_size=batch_size)


def membership_inference_auc(
    model: nn.Module,
    x_members: torch.Tensor,
    y_members: torch.Tensor,
    x_nonmembers: torch.Tensor,
    y_nonmembers: torch.Tensor,
) -> float:
    """Loss-based membership-inference AUC: how well "low loss" tells training samples
    (members) from held-out ones. 0.5 = the attacker cannot tell them apart; 1.0 = every
    member has a lower loss than every non-member."""
    if len(y_members) == 0 or len(y_nonmembers) == 0:
        raise ValueError(
            "membership_inference_auc needs at least one member and one non-member sample"
        )
    lm = per_sample_loss(model, x_members, y_members)
    ln = per_sample_loss(model, x_nonmembers, y_nonmembers)
    scores = torch.cat([-lm, -ln]).numpy()
    labels = np.concatenate([np.ones(len(lm)), np.zeros(len(ln))])
    return float(roc_auc_score(labels, scores))
