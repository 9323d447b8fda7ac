"""The forgetting step of the paper (Yamashita et al., ACML 2024, Sec. 3.3, Eq. 9-11).

With f_F (f_R) the diagonal Fisher of the forgotten (remaining) classes' mnemonic codes,
every parameter w_i gets the sensitivity ``eta_i = f_F,i / (f_R,i + EPS)``, each tensor l a step
``alpha_l = min(lambda1, lambda2 / max_{i in l} eta_i)``, and the model moves once:
``w_i <- w_i + sign * alpha_l * eta_i``.

:func:`class_fisher_ratio` computes eta (in the Fisher's precision, float32 by default),
:func:`layer_steps` the alphas, :func:`perturbation` the change and :func:`apply_step` applies
it, cast to each parameter's dtype only at the end (a float16 model gets a finite step even
where eta exceeds float16's range). :func:`head_params` names the output layer's tensors.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mnemo_tutorial import distributed
from mnemo_tutorial.core.fisher import ParamDict, grouped_fisher

__all__ = [
    "EPS",
    "apply_step",
    "class_fisher_ratio",
    "head_params",
    "layer_steps",
    "perturbation",
    "resolve_params",
    "sensitivity",
]

EPS = 1e-16  # added to f_R in eta = f_F / (f_R + EPS)


def sensitivity(f_forget: ParamDict, f_remain: ParamDict, eps: float = EPS) -> ParamDict:
    """eta_i = f_F,i / (f_R,i + eps), NaN -> 0 and +inf -> the largest finite float."""
    out = {}
    for k in f_forget:
        eta = f_remain[k] + eps
        torch.div(f_forget[k], eta, out=eta)
        out[k] = eta.nan_to_num_(nan=0.0, posinf=torch.finfo(eta.dtype).max)
    return out


# id(tensor) -> (a weak reference to it, its version counter, its maximum): a forget asks for
# the maxima of the same eta several times (the sign rule, the candidates, the report), each a
# pass over every element. An entry leaves when its tensor is freed.
_MAXIMA: dict[int, tuple[weakref.ref, int, float]] = {}


def _maximum(v: torch.Tensor) -> float:
    """max of ``v`` (0 when empty), remembered until ``v`` is modified in place."""
    if v.is_inference():  # no version counter to tell an in-place change: not remembered
        return float(v.max()) if v.numel() else 0.0
    key = id(v)
    known = _MAXIMA.get(key)
    if known is not None and known[0]() is v and known[1] == v._version:
        return known[2]
    top = float(v.max()) if v.numel() else 0.0
    _MAXIMA[key] = (weakref.ref(v, _forgetter(key)), v._version, top)
    return top


def _forgetter(key: int) -> Callable[[weakref.ref], None]:
    """The callback that drops ``key``'s entry when its tensor is freed."""

    def drop(_: weakref.ref) -> None:
        _MAXIMA.pop(key, None)

    return drop


def maxima(eta: ParamDict) -> dict[str, float]:
    """max_i eta_i per tensor (0 for an empty tensor)."""
    return {k: _maximum(v) for k, v in eta.items()}


def steps_from_maxima(m: dict[str, float], lambda1: float, lambda2: float) -> dict[str, float]:
    """alpha_l = min(lambda1, lambda2 / m_l) (lambda1 where m_l is 0)."""
    return {k: lambda1 if v <= 0 else min(lambda1, lambda2 / v) for k, v in m.items()}


def layer_steps(eta: ParamDict, lambda1: float, lambda2: float) -> dict[str, float]:
    """Per-tensor step alpha_l = min(lambda1, lambda2 / max_{i in l} eta_i)."""
    return steps_from_maxima(maxima(eta), lambda1, lambda2)


def perturbation(eta: ParamDict, steps: dict[str, float], sign: int) -> ParamDict:
    """Delta w_i = sign * alpha_l * eta_i for every tensor l of ``eta`` (in eta's dtype)."""
    return {k: sign * steps[k] * v for k, v in eta.items()}


def apply_step(model: nn.Module, eta: ParamDict, steps: dict[str, float], sign: int) -> None:
    """In place: w <- w + sign * steps[l] * eta[l] for the tensors of ``eta``; clears ``.grad``.

    The change is computed in eta's dtype and cast to each parameter's dtype only when added.
    """
    delta = perturbation(eta, steps, sign)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in delta:
                p.add_(delta[name].to(device=p.device, dtype=p.dtype))
            p.grad = None


def head_params(model: nn.Module, num_classes: int | None = None) -> tuple[str, ...]:
    """Names of the output layer's tensors: the last ``nn.Linear`` in registration order (with
    ``num_classes`` outputs if given). The one definition of "the head" in the package."""
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and (num_classes is None or mod.out_features == num_classes):
            last = (name, mod)
    if last is None:
        outputs = "" if num_classes is None else f" with {num_classes} outputs"
        raise ValueError(
            f"params='head' needs a model with an nn.Linear{outputs} (its output "
            f"layer); {type(model).__name__} has none: name the tensors instead"
        )
    prefix = f"{last[0]}." if last[0] else ""
    return tuple(prefix + k for k, _ in last[1].named_parameters())


def resolve_params(model: nn.Module, params: str | Sequence[str]) -> list[str] | None:
    """``params`` ("all", "head", "head-bias" or names) as tensor names of ``model`` (None for
    "all").

    Raises ValueError naming the first unknown tensor and the model's tensors; "auto" is
    resolved from the codes first (:func:`~mnemo_tutorial.core.forget.resolve_settings`)."""
    if params == "auto":
        raise ValueError(
            "params='auto' depends on the codes' rehearsal: resolve it with "
            "resolve_settings(codes, settings) first"
        )
    if params == "all":
        return None
    if params == "head-bias":
        names = [n for n in head_params(model) if n.rpartition(".")[2] == "bias"]
        if not names:
            raise ValueError(
                f"params='head-bias' needs an output layer with a bias; the output layer of "
                f"the {type(model).__name__} model has none: use 'head' or name the tensors"
            )
    else:
        names = list(head_params(model)) if params == "head" else list(params)
    known = [k for k, _ in model.named_parameters()]
    unknown = [p for p in names if p not in known]
    if unknown or not names:
        shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        raise ValueError(
            f"params must name tensors of the {type(model).__name__} model ({shown});"
            f" got {unknown[0] if unknown else names!r}"
        )
    return names


def class_fisher_ratio(
    model: nn.Module,
    code_tensor: torch.Tensor,
    classes: Sequence[int],
    *,
    normalize: bool = True,
    dtype: torch.dtype | None = torch.float32,
    params: Sequence[str] | None = None,
) -> ParamDict:
    """eta = f_F / (f_R + EPS) for the tensors ``params`` (default all), from the codes (C, *input).

    f_F (f_R) is the mean over the forgotten (remaining) classes of each code's squared
    gradient, with ``normalize`` divided by its total over the tensors ``params``. Tensors
    whose eta is zero everywhere (they would not move) are left out. In ``dtype`` (float32 by
    default, whatever the model's precision; None: the model's). Under ``torchrun`` the codes
    are split over the processes (:func:`~mnemo_tutorial.distributed.grouped_fisher_sharded`).
    """
    num_classes = code_tensor.shape[0]
    remain = [c for c in range(num_classes) if c not in classes]
    weights = torch.zeros(2, num_classes, device=code_tensor.device)
    weights[0, list(classes)] = 1.0 / len(classes)
    weights[1, remain] = 1.0 / len(remain)
    labels = torch.arange(num_classes, device=code_tensor.device)
    fisher = distributed.grouped_fisher_sharded if distributed.active() else grouped_fisher
    f_forget, f_remain = fisher(
        model, code_tensor, labels, weights, normalize=normalize, params=params, dtype=dtype
    )
    eta = sensitivity(f_forget, f_remain)
    return {k: v for k, v in eta.items() if _maximum(v) > 0}
