"""Audits: is the forgotten class really gone, or only hidden behind the output layer?

E_F only says that the model no longer *predicts* the forgotten class. These audits look
further, each to be read against the model retrained from scratch without the class
(the gold standard) and against the output-suppression control (see
:mod:`mnemo_tutorial.evaluation.removal`, which adds probes at every depth, the SSD
repository's entropy attack, relearning curves and the distance to the retrained model;
:func:`audit` runs them all):

* :func:`membership_auc` — can an attacker tell the forgotten class's training samples
  from its held-out samples by their loss?
* :func:`linear_probe` — can a linear classifier still read the forgotten class out of the
  penultimate-layer features?
* :func:`relearn_time` — how few fine-tuning steps bring the forgotten class back?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.evaluation.metrics import (
    SplitLogits,
    batched_eval,
    class_mask,
    membership_inference_auc,
    sample_indices,
)
from mnemo_tutorial.evaluation.removal import Relearner, removal_audits
from mnemo_tutorial.training.data import ImageData

__all__ = [
    "audit",
    "extract_features",
    "linear_probe",
    "membership_auc",
    "probe_features",
    "relearn_time",
]

# --------------------------------------------------------------------------- membership inference


def membership_auc(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    samples: int | None = 1000,
    seed: int = 0,
) -> float:
    """Loss-based membership-inference AUC on the forgotten classes.

    Members: up to ``samples`` random training samples of the forgotten classes; non-members:
    as many of their test samples (all of them if fewer). The attacker scores each sample by
    its negative cross-entropy loss
    (:func:`mnemo_tutorial.evaluation.metrics.membership_inference_auc`).

    Reading it: 0.5 means the attacker cannot tell training samples from held-out ones by
    their loss, which is what a model that never trained on them gives (the retrained
    model); 1.0 means every training sample has a lower loss than every held-out one (the
    model remembers exactly which samples it saw). Values well below 0.5 are also a signal
    (members have a *higher* loss, as after gradient ascent on them). A model that
    generalises well is near 0.5 even before forgetting (the paper reports 0.49 before and
    0.51 after on MNIST), so compare with the retrained model rather than read the number
    alone.
    """
    classes = check_forget_classes(forget, data.num_classes)
    gen = torch.Generator().manual_seed(int(seed))
    non = sample_indices(class_mask(data.y_test, classes), samples, gen)
    mem = sample_indices(class_mask(data.y_train, classes), non.numel(), gen)
    return membership_inference_auc(
        model, data.x_train[mem], data.y_train[mem], data.x_test[non], data.y_test[non]
    )


# --------------------------------------------------------------------------- linear probe


def extract_features(
    model: nn.Module, x: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """Penultimate-layer features ``model.features(x)``: x (N, *input_shape) on any device ->
    (N, D) float32 on CPU. The model's mode is restored."""
    features = getattr(model, "features", None)
    if not callable(features):
        raise ValueError(
            "model must have a features(x) method returning penultimate features; "
            f"{type(model).__name__} has none"
        )
    return batched_eval(model, lambda xb: features(xb).flatten(1).float(), x, batch_size=batch_size)


def probe_features(
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    f_test: torch.Tensor,
    y_test: torch.Tensor,
    forget: Sequence[int],
    C: float = 1.0,
    max_iter: int = 300,
) -> dict[str, float]:
    """Fit a multiclass logistic regression on features (N, D) -> labels (N,) (any device) and
    report test accuracies in percent: ``forget_acc`` (on the forgotten classes' samples: the
    probe reads them out as their own class), ``remain_acc`` and ``accuracy`` (all)."""
    # imported here: scikit-learn's linear models load SciPy's optimisers, which only the probe
    # needs
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    a_train, a_test = f_train.detach().cpu().numpy(), f_test.detach().cpu().numpy()
    scaler = StandardScaler().fit(a_train)
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit(scaler.transform(a_train), y_train.cpu().numpy())
    pred = clf.predict(scaler.transform(a_test))
    y = y_test.cpu().numpy()
    is_f = np.isin(y, np.asarray(list(forget)))
    correct = pred == y
    return {
        "forget_acc": 100.0 * float(correct[is_f].mean()) if is_f.any() else float("nan"),
        "remain_acc": 100.0 * float(correct[~is_f].mean()) if (~is_f).any() else float("nan"),
        "accuracy": 100.0 * float(correct.mean()),
    }


def linear_probe(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    train_samples: int = 3000,
    test_samples: int = 2000,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 300,
) -> dict[str, float]:
    """How well a *linear* classifier reads the forgotten classes out of the penultimate
    features ``model.features(x)`` after forgetting.

    A full multiclass probe (scikit-learn ``LogisticRegression``, standardised features,
    L2 strength ``C``) is trained on the features of ``train_samples`` random training
    samples of *all* classes and tested on ``test_samples`` random test samples. Returned
    (percent): ``forget_acc`` = accuracy on the forgotten classes' test samples (how much of
    the class the representation still carries), ``remain_acc`` and ``accuracy``.

    Reading it: a one-shot weight perturbation or a changed output layer can drive E_F to
    100 while the features still separate the class (``forget_acc`` high). Compare with the
    retrained model: generic features learned on the other classes often separate the
    forgotten class well too, so a high ``forget_acc`` is only a leak if it is clearly above
    the retrained model's.
    """
    classes = check_forget_classes(forget, data.num_classes)
    gen = torch.Generator().manual_seed(int(seed))
    tr = sample_indices(torch.ones(len(data.y_train), dtype=torch.bool), train_samples, gen)
    te = sample_indices(torch.ones(len(data.y_test), dtype=torch.bool), test_samples, gen)
    return probe_features(
        extract_features(model, data.x_train[tr]),
        data.y_train[tr],
        extract_features(model, data.x_test[te]),
        data.y_test[te],
        classes,
        C=C,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------- relearn time


def _check_relearn_args(
    threshold: float, max_steps: int, forget_samples: int, retain_samples: int, lr: float
) -> None:
    if not 0.0 < threshold <= 100.0:
        raise ValueError(f"threshold must be a percentage in (0, 100]; got {threshold!r}")
    if int(max_steps) < 1 or int(forget_samples) < 1 or int(retain_samples) < 0:
        raise ValueError(
            f"max_steps and forget_samples must be >= 1 and retain_samples >= 0; "
            f"got {max_steps!r}, {forget_samples!r}, {retain_samples!r}"
        )
    if lr <= 0:
        raise ValueError(f"lr must be > 0; got {lr!r}")


def relearn_time(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    forget_samples: int = 16,
    retain_samples: int = 128,
    lr: float = 0.01,
    momentum: float = 0.9,
    threshold: float = 50.0,
    max_steps: int = 100,
    eval_samples: int | None = 1000,
    seed: int = 0,
) -> dict[str, float | int | bool]:
    """Relearn time (Golatkar et al., CVPR 2020): full-batch SGD steps on a copy of ``model``
    until the forgotten classes come back.

    The fine-tuning set is fixed: ``forget_samples`` random training samples of the
    forgotten classes plus ``retain_samples`` random training samples of the other classes
    (so that the model cannot simply predict the forgotten class everywhere). After each
    step the accuracy on up to ``eval_samples`` held-out test samples of the forgotten
    classes is measured; the count stops when it reaches ``threshold`` percent.

    Returns ``{"steps": n, "relearned": bool, "final_forget_acc": %, "remain_acc": %}`` with
    ``steps = max_steps`` and ``relearned = False`` when the threshold was never reached
    (0 steps when the model already meets it). Reading it: a model that *hides* the class
    (the information is still in the weights) relearns in far fewer steps than the model
    retrained without it; one that matches the retrained model's count behaves as if it had
    never seen the class. The input model is not modified; the copy stays on its device.
    """
    classes = check_forget_classes(forget, data.num_classes)
    _check_relearn_args(threshold, max_steps, forget_samples, retain_samples, lr)
    run = Relearner(
        model, data, classes, forget_samples, retain_samples, lr, momentum, eval_samples, seed
    )
    acc, steps = run.forget_acc(), 0
    while acc < threshold and steps < int(max_steps):
        run.step()
        steps += 1
        acc = run.forget_acc()
    remain = run.remain_acc()
    return {
        "steps": int(steps),
        "relearned": acc >= threshold,
        "final_forget_acc": acc,
        "remain_acc": remain,
    }


def audit(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    seed: int = 0,
    reference: nn.Module | None = None,
    relearn_steps: int = 30,
    mia_samples: int | None = None,
    logits: SplitLogits | None = None,
) -> dict[str, Any]:
    """Every audit with its defaults, in one dict (``logits``: the model's
    :class:`~mnemo_tutorial.evaluation.metrics.SplitLogits`, if already computed):
    ``mia_auc`` (:func:`membership_auc`, the loss threshold) and the audits of
    :func:`mnemo_tutorial.evaluation.removal.removal_audits` (``probe``, ``probe_first``,
    ``probe_last``, ``mia_entropy``, ``relearn_curve``, ``relearn_steps``, ``relearned``,
    ``js_to_reference`` against ``reference``, usually the retrained model)."""
    out: dict[str, Any] = {"mia_auc": membership_auc(model, data, forget, seed=seed)}
    out.update(
        removal_audits(
            model,
            data,
            forget,
            reference=reference,
            seed=seed,
            relearn_steps=relearn_steps,
            mia_samples=mia_samples,
            logits=logits,
        )
    )
    return out
