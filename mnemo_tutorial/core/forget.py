"""One-shot forgetting with mnemonic codes (Yamashita et al., "One-Shot Machine Unlearning with
Mnemonic Code", ACML 2024): :func:`forget` and what it returns.

``forget(model, codes, classes, settings)`` computes eta from the codes' Fisher
(:mod:`~mnemo_tutorial.core.step`), chooses the step with the settings' selection
(:mod:`~mnemo_tutorial.core.selection`), applies it to a copy and reports. A selection whose
criterion is not met is reported (``report.status == "failed"``, the diagnosis in
``report.details["diagnosis"]``) and, by default, raised as :class:`ForgetFailed`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mnemo_tutorial.checks import check_choice, check_forget_classes
from mnemo_tutorial.core.alignment import CodesNotAligned, ForgetRefused, refusal
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.probe import CodeProbe
from mnemo_tutorial.core.rehearsal import RehearsalMissed, rehearsal_refusal, rehearsed_settings
from mnemo_tutorial.core.selection import Choice, select
from mnemo_tutorial.core.settings import ON_FAILURE, DataFree, ForgetSettings
from mnemo_tutorial.core.step import apply_step, class_fisher_ratio, resolve_params
from mnemo_tutorial.utils import module_device

__all__ = [
    "UNCHECKED",
    "VERIFY_TOLERANCE",
    "CodesNotAligned",
    "CodesUnchecked",
    "ForgetFailed",
    "ForgetRefused",
    "ForgetReport",
    "ForgetResult",
    "RehearsalMissed",
    "forget",
    "refused_result",
    "resolve_settings",
]

VERIFY_TOLERANCE = 2.0  # percentage points: verify fails if A_R drops more or E_F < 100 - this


@dataclass
class ForgetReport:
    """What a forgetting method did. ``seconds`` is the wall clock of the whole call;
    ``status`` is "ok", "failed" (the method's criterion not met, see ``details``) or
    "refused" (no step taken: the codes do not sit with their classes, ``details["refused"]``).
    ``selection``, ``lambda1``, ``lambda2``, ``sign`` and ``steps`` (per moved tensor) are
    set by the mnemonic method only."""

    method: str
    forget: list[int]
    seconds: float
    status: str = "ok"
    selection: str | None = None
    lambda1: float | None = None
    lambda2: float | None = None
    sign: int | None = None
    steps: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return dataclasses.asdict(self)


@dataclass
class ForgetResult:
    """A new model (the input model is left as it was) and the report."""

    model: nn.Module
    report: ForgetReport


class ForgetFailed(Exception):
    """The selection's criterion was not met; ``.result`` holds the model and the report
    (``result.report.details["diagnosis"]``) for inspection."""

    def __init__(self, message: str, result: ForgetResult):
        super().__init__(message)
        self.result = result


class CodesUnchecked(UserWarning):
    """``forget`` was given codes without an alignment record and no ``verify=`` split:
    nothing has checked that forgetting a code forgets its class."""


UNCHECKED = (
    "forget: these codes carry no alignment record, so nothing has checked that forgetting a "
    "code forgets its class in this model. The package's training loop records it; for a "
    "model trained elsewhere, codes = codes.with_alignment(measure_alignment(model, "
    "codes.codes, x_train, y_train)), or pass verify=(x_held_out, y_held_out) to check the "
    "result on data"
)


def resolve_settings(
    codes: MnemonicCodes | torch.Tensor, settings: ForgetSettings
) -> tuple[ForgetSettings, str]:
    """``settings`` with ``params="auto"`` replaced by the codes' rehearsed choice ("all"
    without a rehearsal); -> (settings, where params came from: "rehearsal", "default" or
    "given")."""
    if settings.params != "auto":
        return settings, "given"
    record = codes.alignment if isinstance(codes, MnemonicCodes) else None
    rehearsal = None if record is None else record.rehearsal
    if rehearsal is None:
        return settings.replace(params="all"), "default"
    return settings.replace(params=rehearsal.params), "rehearsal"


def _check_alignment(
    codes: MnemonicCodes | torch.Tensor,
    classes: list[int],
    settings: ForgetSettings,
    require: bool,
    verified: bool,
) -> None:
    """Refuse forgotten classes whose rehearsal with these settings missed
    (:class:`RehearsalMissed`) or, for settings not rehearsed, whose codes do not sit with them
    (:class:`CodesNotAligned`); warn (:class:`CodesUnchecked`) when nothing records it and
    nothing will verify."""
    record = codes.alignment if isinstance(codes, MnemonicCodes) else None
    if record is None:
        if not verified:
            warnings.warn(UNCHECKED, CodesUnchecked, stacklevel=3)
        return
    if not require:
        return
    if record.rehearsal is not None:
        described = rehearsed_settings(settings)
        if record.rehearsal.covers(settings.params, described):
            # what the rehearsal measured outranks the cosine, which only predicts it
            missed = rehearsal_refusal(record.rehearsal, settings.params, described, classes)
            if missed is not None:
                raise missed
            return
    misaligned = refusal(record, classes)
    if misaligned is not None:
        raise misaligned


def refused_result(
    model: nn.Module, classes: list[int], exc: ForgetRefused, t0: float
) -> ForgetResult:
    """The result of a refused call: the model copied unchanged, ``status == "refused"``
    (``details["refused"]`` the message, ``details["reason"]`` "misaligned" or "rehearsal",
    ``details["refused_classes"]``)."""
    reason = "misaligned" if isinstance(exc, CodesNotAligned) else "rehearsal"
    report = ForgetReport(
        method="mnemonic",
        forget=list(classes),
        seconds=time.perf_counter() - t0,
        status="refused",
        details={"refused": str(exc), "reason": reason, "refused_classes": list(exc.classes)},
    )
    return ForgetResult(model=copy.deepcopy(model), report=report)


def _check_split(name: str, split: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    if split is None:
        return None
    if not (
        isinstance(split, (tuple, list))
        and len(split) == 2
        and all(isinstance(t, torch.Tensor) for t in split)
    ):
        raise ValueError(f"{name} must be an (x, y) pair of tensors; got {type(split).__name__}")
    x, y = split
    if len(y) == 0 or len(x) != len(y):
        raise ValueError(
            f"{name} must hold at least one sample with as many labels as inputs; "
            f"got {len(x)} inputs, {len(y)} labels"
        )
    return x, y


def _diagnosis(probe: CodeProbe, choice: Choice, criterion: str) -> dict[str, Any]:
    """Code margins before and after the chosen step."""
    zero = torch.zeros(1, len(probe.names), dtype=torch.float64)
    # one row at a time: the probe keeps single rows' logits, and the selection has asked for
    # both already when it screened (the unperturbed model, the chosen step)
    before = probe.stats(zero)[0]
    after = probe.stats(probe.row(choice.steps, choice.sign))[0]
    return {
        "criterion": criterion,
        "criterion_met": bool(choice.criterion_met),
        "forget_code_margin": {"before": before.forget_depth, "after": after.forget_depth},
        "remaining_code_margin": {"before": before.remain_margin, "after": after.remain_margin},
        "verification": None,
    }


def _verify(
    model: nn.Module,
    new: nn.Module,
    split: tuple[torch.Tensor, torch.Tensor],
    classes: list[int],
    tolerance: float,
) -> dict[str, Any]:
    """E_F and A_R (percent) of ``new`` and A_R of ``model`` on held-out (x, y); ok when A_R
    drops by at most ``tolerance`` points and E_F >= 100 - ``tolerance`` (if forget samples
    are present)."""
    # metrics loads scikit-learn, needed only for verify=
    from mnemo_tutorial.evaluation.metrics import predict

    x, y = split
    y = y.cpu()
    is_forget = torch.isin(y, torch.tensor(classes))
    before, after = predict(model, x) == y, predict(new, x) == y

    def pct(t: torch.Tensor) -> float:
        return float(100.0 * t.float().mean()) if t.numel() else float("nan")

    out: dict[str, Any] = {
        "samples": int(y.numel()),
        "forget_samples": int(is_forget.sum()),
        "tolerance": tolerance,
        "E_F": pct(~after[is_forget]),
        "A_R_before": pct(before[~is_forget]),
        "A_R_after": pct(after[~is_forget]),
    }
    ar_ok = not (out["A_R_before"] - out["A_R_after"] > tolerance)
    ef_ok = out["forget_samples"] == 0 or out["E_F"] >= 100.0 - tolerance
    out["ok"] = bool(ar_ok and ef_ok)
    return out


def _finish(result: ForgetResult, on_failure: str) -> ForgetResult:
    """Raise, warn or return according to ``on_failure`` when the report says "failed"."""
    rep = result.report
    if rep.status == "ok" or on_failure == "return":
        return result
    diag = rep.details["diagnosis"]
    fm, rm = diag["forget_code_margin"], diag["remaining_code_margin"]
    what = (
        "the held-out check failed"
        if diag["criterion_met"]
        else f"the {rep.selection} criterion was not met (forget-code margin {fm['after']:.3g}, "
        f"remaining-code margin {rm['after']:.3g})"
    )
    if not all(math.isfinite(m) for m in (fm["before"], fm["after"], rm["before"], rm["after"])):
        what += "; the code logits are not finite (NaN or inf weights: did training diverge?)"
    elif rm["before"] <= 0:
        what += (
            "; the model already misclassifies a remaining code before the step (was it "
            "trained with these codes?)"
        )
    message = (
        f"forgetting classes {rep.forget} failed: {what}; try ForgetSettings(params="
        "'head'), selection=Validation(x, y), or on_failure='return' to inspect "
        "report.details['diagnosis']"
    )
    if on_failure == "warn":
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return result
    raise ForgetFailed(message, result)


def forget(
    model: nn.Module,
    codes: MnemonicCodes | torch.Tensor,
    classes: Sequence[int] | int,
    settings: ForgetSettings | None = None,
    *,
    verify: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_failure: str = "raise",
    require_alignment: bool = True,
) -> ForgetResult:
    """Forget ``classes`` from ``model`` in one step computed from the mnemonic codes.

    Args:
        model: a classifier trained with ``codes``; left as it was (values, mode, no grads).
        codes: the mnemonic codes (C, *input_shape), code c of class c.
        classes: the class(es) to forget; at least one class must remain.
        settings: how (default ``ForgetSettings()``: the tensors the codes' rehearsal chose,
            every tensor without one, data-free selection with a margin of 8 logits; see
            :mod:`~mnemo_tutorial.core.settings` for the defaults that differ from the paper).
        verify: held-out ``(x, y)`` from the training data; A_R dropping by more than
            ``VERIFY_TOLERANCE`` points or E_F < 100 - ``VERIFY_TOLERANCE`` fails the result.
        on_failure: "raise" (default) raises :class:`ForgetFailed` carrying the result, "warn"
            warns, "return" returns it, when the criterion or the verification fails.
        require_alignment: codes whose alignment record
            (:class:`~mnemo_tutorial.core.alignment.CodeAlignment`, made by the package's
            training loop or :func:`~mnemo_tutorial.core.alignment.measure_alignment`) says a
            forgotten class's code does not sit with its class are refused with
            :class:`CodesNotAligned` before any step; where the record holds a rehearsal of
            these settings (:mod:`~mnemo_tutorial.core.rehearsal`), its measurement decides
            instead: classes it forgot off target are refused with :class:`RehearsalMissed`.
            False steps anyway. Codes without a
            record warn (:class:`CodesUnchecked`) unless ``verify`` is given.

    Returns:
        :class:`ForgetResult`: the new model and a :class:`ForgetReport` whose
        ``details["diagnosis"]`` holds criterion_met, the forget-code margin (min over forget
        codes of best remaining logit - own logit), the remaining-code margin (min over
        remaining codes of own logit - best other logit) before and after, and the
        verification.

    The step: eta = f_F / (f_R + EPS) from the codes' Fisher of the tensors ``settings.params``,
    then w <- w + sign * alpha_l * eta on a copy, alpha_l = min(lambda1, lambda2 / max eta_l).
    """
    t0 = time.perf_counter()
    settings = ForgetSettings() if settings is None else settings
    if not isinstance(settings, ForgetSettings):
        raise ValueError(f"settings must be a ForgetSettings; got {type(settings).__name__}")
    check_choice("on_failure", on_failure, ON_FAILURE)
    code_tensor = codes.codes if isinstance(codes, MnemonicCodes) else codes
    classes = check_forget_classes(classes, int(code_tensor.shape[0]), name="classes")
    split = _check_split("verify", verify)
    settings, params_from = resolve_settings(codes, settings)
    params = resolve_params(model, settings.params)
    _check_alignment(codes, classes, settings, bool(require_alignment), split is not None)
    was_training = model.training
    model.eval()
    try:
        new, choice, diagnosis = _forget_eval(model, code_tensor, classes, settings, params)
        if split is not None:
            diagnosis["verification"] = _verify(model, new, split, classes, VERIFY_TOLERANCE)
    finally:
        model.train(was_training)
    new.train(was_training)
    if module_device(model).type == "cuda":
        torch.cuda.synchronize()
    report = _report(classes, settings, choice, diagnosis, time.perf_counter() - t0)
    report.details["params_from"] = params_from
    return _finish(ForgetResult(model=new, report=report), on_failure)


def _forget_eval(
    model: nn.Module,
    code_tensor: torch.Tensor,
    classes: list[int],
    settings: ForgetSettings,
    params: list[str] | None,
) -> tuple[nn.Module, Choice, dict[str, Any]]:
    """The steps of :func:`forget` on a model in eval mode: -> (new model, choice, diagnosis)."""
    code_tensor = code_tensor.to(module_device(model))
    dtype = getattr(torch, settings.fisher_dtype)
    eta = class_fisher_ratio(
        model, code_tensor, classes, normalize=settings.normalize_fisher, dtype=dtype, params=params
    )
    labels = torch.arange(code_tensor.shape[0], device=code_tensor.device)
    probe = CodeProbe(model, code_tensor, labels, eta, classes, int(code_tensor.shape[0]))
    choice, _ = select(settings, probe, eta)
    criterion = settings.selection.criterion
    diagnosis = _diagnosis(probe, choice, criterion)
    new = probe.handover(model)
    apply_step(new, eta, choice.steps, choice.sign)
    return new, choice, diagnosis


def _report(
    classes: list[int],
    settings: ForgetSettings,
    choice: Choice,
    diagnosis: dict[str, Any],
    seconds: float,
) -> ForgetReport:
    ok = choice.criterion_met and (diagnosis["verification"] or {"ok": True})["ok"]
    details = {
        "settings": settings.describe(),
        "normalize_fisher": settings.normalize_fisher,
        "diagnosis": diagnosis,
        "criterion_met": bool(choice.criterion_met),
        **choice.info,
    }
    if isinstance(settings.selection, DataFree):
        details["margin"] = settings.selection.margin
    return ForgetReport(
        method="mnemonic",
        forget=classes,
        seconds=seconds,
        status="ok" if ok else "failed",
        selection=settings.selection.name,
        lambda1=float(choice.lambda1),
        lambda2=float(choice.lambda2),
        sign=int(choice.sign),
        steps={k: float(v) for k, v in choice.steps.items()},
        details=details,
    )
