"""Controls: the simplest edits that could produce what a forgetting method reports.

A control is not a method anyone proposes; it is the foil a claim must be measured against.
If a method and its control cannot be told apart by any measurement, the measurement does
not show that the method removes anything the control does not.

* :func:`suppress` lowers the forgotten classes' output bias by the smallest amount that
  puts every forget code ``margin`` logits below the best remaining class (the criterion of
  the one-shot method's default data-free selection). Closed form, data-free, one tensor
  element per class. It hides the class behind the output layer and removes nothing.
* :func:`head_only` is the one-shot step of the method with every tensor but the output
  layer's left in place (``params="head"``): what the output layer's part of the step does
  alone.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import (
    ForgetFailed,
    ForgetRefused,
    ForgetResult,
    forget,
    refused_result,
)
from mnemo_tutorial.core.settings import DEFAULT_MARGIN, DataFree, ForgetSettings
from mnemo_tutorial.core.step import head_params
from mnemo_tutorial.evaluation.metrics import batched_eval
from mnemo_tutorial.methods.common import make_report

__all__ = ["head_only", "margin_of", "suppress", "suppression_shift"]


def _code_tensor(codes: MnemonicCodes | torch.Tensor) -> torch.Tensor:
    return codes.codes if isinstance(codes, MnemonicCodes) else codes


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's logits on x (eval mode, no gradients, CPU), in float64."""
    p = next(model.parameters())
    return batched_eval(model, lambda xb: model(xb.to(p.dtype)).double(), x)


def suppression_shift(
    logits: torch.Tensor, classes: Sequence[int], margin: float = DEFAULT_MARGIN
) -> torch.Tensor:
    """The smallest non-negative shifts ``d`` (one per forgotten class, in the order of
    ``classes``) such that, on every forget code k (row k of ``logits``, (C, C)),
    ``logits[k, c] - d_c <= max over remaining r of logits[k, r] - margin`` for every
    forgotten class c: ``d_c = max(0, max_k logits[k, c] - best_remaining[k] + margin)``."""
    num = logits.shape[1]
    fmask = torch.zeros(num, dtype=torch.bool)
    fmask[list(classes)] = True
    rows = logits[list(classes)]  # the forget codes' logits (|F|, C)
    best_remaining = rows[:, ~fmask.to(rows.device)].amax(1, keepdim=True)
    need = rows[:, list(classes)] - best_remaining + float(margin)  # (|F| codes, |F| classes)
    return need.amax(0).clamp_min(0.0)


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
        raise ValueError(f"margin must be a positive number of logits; got {margin!r}")
    if margin == float("inf"):
        raise ValueError(f"margin must be finite; got {margin!r}")
    return float(margin)


def suppress(
    model: nn.Module,
    codes: MnemonicCodes | torch.Tensor,
    classes: Sequence[int] | int,
    margin: float = DEFAULT_MARGIN,
) -> ForgetResult:
    """The output-suppression control: lower the output bias of each forgotten class by the
    smallest amount that puts every forget code ``margin`` logits below the best remaining
    class (:func:`suppression_shift`), and nothing else.

    ``codes``: the model's mnemonic codes (code c has label c), the only inputs it reads. The
    output layer is the last ``nn.Linear`` with one output per class
    (:func:`mnemo_tutorial.core.step.head_params`); it must have a bias, and the model's
    output must be that layer's output (checked: the criterion is verified on the codes
    after the edit and ``status`` is "failed" if it does not hold). The remaining classes'
    logits are unchanged, so every remaining code keeps its class. The report's details give
    the shift per class and the bias tensor edited. The input model is not modified."""
    t0 = time.perf_counter()
    margin = _check_margin(margin)
    x = _code_tensor(codes)
    logits = _logits(model, x)
    num = logits.shape[1]
    classes = check_forget_classes(classes, num)
    if x.shape[0] != num:
        raise ValueError(f"codes must hold one code per class ({num}); got {x.shape[0]}")
    names = head_params(model, num)
    bias = next((n for n in names if n.endswith("bias")), None)
    if bias is None:
        raise ValueError(
            f"suppress needs an output layer with a bias; {type(model).__name__}'s "
            f"output layer ({names[0].rsplit('.', 1)[0] or 'the model'}) has none"
        )
    shift = suppression_shift(logits, classes, margin)
    new = copy.deepcopy(model)
    b = dict(new.named_parameters())[bias]
    with torch.no_grad():
        b[list(classes)] -= shift.to(device=b.device, dtype=b.dtype)
    after = _logits(new, x)
    fmask = torch.zeros(num, dtype=torch.bool)
    fmask[classes] = True
    depth = after[classes][:, ~fmask].amax(1, keepdim=True) - after[classes][:, classes]
    kept = bool((after[~fmask].argmax(1) == torch.nonzero(~fmask).flatten()).all())
    met = bool(depth.min() >= margin * (1 - 1e-6) - 1e-6) and kept
    details = {
        "tensor": bias,
        "shift": dict(zip([int(c) for c in classes], shift.tolist())),
        "margin": margin,
        "criterion_met": met,
        "criterion": f"every forget code {margin:g} logits below the best remaining class",
    }
    seconds = time.perf_counter() - t0
    report = make_report("suppress", classes, seconds, details, "ok" if met else "failed")
    return ForgetResult(new, report)


def head_only(
    model: nn.Module,
    codes: MnemonicCodes,
    classes: Sequence[int] | int,
    settings: ForgetSettings | None = None,
) -> ForgetResult:
    """The one-shot step restricted to the output layer: :func:`~mnemo_tutorial.forget` with
    ``settings`` (default ``ForgetSettings()``) and ``params="head"``. A failed selection is
    returned with ``status == "failed"``, a refusal with ``status == "refused"``, not raised."""
    settings = (settings or ForgetSettings()).replace(params="head")
    t0 = time.perf_counter()
    try:
        result = forget(model, codes, classes, settings)
    except ForgetFailed as exc:
        result = exc.result
    except ForgetRefused as exc:
        result = refused_result(model, check_forget_classes(classes, codes.num_classes), exc, t0)
    result.report.method = "head-only"
    return result


def margin_of(settings: ForgetSettings | None) -> float:
    """The margin of a data-free selection in ``settings`` (``DEFAULT_MARGIN`` otherwise)."""
    sel = settings.selection if settings is not None else None
    return sel.margin if isinstance(sel, DataFree) else DEFAULT_MARGIN
