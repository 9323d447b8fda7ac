"""Metrics of the paper (E_F, A_R), per-class accuracy, confusion matrix."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import confusion_matrix as _sk_confusion
from sklearn.metrics import roc_auc_score
from torch import nn

from .utils import module_device


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Predicted classes (N,) on CPU for inputs x (N, *input_shape); the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    out = []
    try:
        for start in range(0, x.shape[0], batch_size):
            out.append(model(x[start : start + batch_size].to(device)).argmax(1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def per_class_accuracy(preds: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy in percent for each class (NaN for a class without samples)."""
    correct = torch.bincount(y[preds == y], minlength=num_classes).double()
    total = torch.bincount(y, minlength=num_classes).double()
    acc = torch.where(total > 0, 100.0 * correct / total.clamp(min=1), torch.full_like(total, float("nan")))
    return [float(a) for a in acc]


def forget_metrics(
    preds: torch.Tensor, y: torch.Tensor, forget: Sequence[int], num_classes: int
) -> dict[str, float | list[float]]:
    """E_F (test error on the forgotten classes, %), A_R (accuracy on the rest, %),
    overall accuracy (%) and per-class accuracy (%) from predictions (N,) and labels (N,)."""
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
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, forget: Sequence[int] = (), num_classes: int | None = None
) -> dict[str, float | list[float]]:
    """E_F, A_R, accuracy and per-class accuracy (all in %) of ``model`` on (x, y)."""
    num_classes = int(num_classes if num_classes is not None else int(y.max()) + 1)
    return forget_metrics(predict(model, x), y.cpu(), forget, num_classes)


def confusion_matrix(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    return _sk_confusion(y.cpu().numpy(), predict(model, x).numpy(), labels=list(range(num_classes)))


@torch.no_grad()
def per_sample_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Cross-entropy of each sample (N,) on CPU; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    out = []
    try:
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start : start + batch_size].to(device)).float()
            out.append(nn.functional.cross_entropy(logits, y[start : start + batch_size].to(device), reduction="none").cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


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
        raise ValueError("membership_inference_auc needs at least one member and one non-member sample")
    lm = per_sample_loss(model, x_members, y_members)
    ln = per_sample_loss(model, x_nonmembers, y_nonmembers)
    scores = torch.cat([-lm, -ln]).numpy()
    labels = np.concatenate([np.ones(len(lm)), np.zeros(len(ln))])
    return float(roc_auc_score(labels, scores))
