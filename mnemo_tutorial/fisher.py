"""Diagonal Fisher information from per-sample squared gradients.

For a parameter w_i, the diagonal empirical Fisher of the cross-entropy loss L over samples
(x_n, y_n) is ``F_i = mean_n (dL(x_n, y_n)/dw_i)^2``. The per-sample gradients are computed
in one vectorised call with ``torch.func.vmap(torch.func.grad(...))``: no Python loop over
samples. :func:`fisher_loop` is the slow, obvious version kept for tests and benchmarks.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

ParamDict = dict[str, torch.Tensor]


def stable_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, mean over the batch, written as softplus(logsumexp_{k != y}(z_k - z_y)).

    Equal to ``nn.functional.cross_entropy`` in exact arithmetic, but its gradient stays
    accurate when the true class's probability is within float32 rounding of 1 (the
    standard form then returns a gradient of exactly 0 for the true class's logit, which
    is what happens for a memorised mnemonic code). logits (N, C), target (N,).
    """
    z_true = logits.gather(1, target[:, None])
    others = (logits - z_true).scatter(1, target[:, None], float("-inf"))
    return nn.functional.softplus(torch.logsumexp(others, dim=1)).mean()


def _params_and_buffers(model: nn.Module, dtype: torch.dtype | None = None) -> tuple[ParamDict, ParamDict]:
    def cast(v: torch.Tensor) -> torch.Tensor:
        v = v.detach()
        return v.to(dtype) if dtype is not None and v.is_floating_point() else v

    params = {k: cast(v) for k, v in model.named_parameters()}
    buffers = {k: cast(v) for k, v in model.named_buffers()}
    return params, buffers


def per_sample_sq_grads(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None = None
) -> ParamDict:
    """Squared per-sample gradients of the cross-entropy loss.

    x: (N, *input_shape), y: (N,) -> {name: (N, *param_shape)}. The model is used as it is
    (call ``model.eval()`` first for batch-norm or dropout models); its parameters get no
    ``.grad``. The loss is :func:`stable_cross_entropy`. ``dtype`` (e.g. ``torch.float64``)
    computes in another precision without touching the model.
    """
    params, buffers = _params_and_buffers(model, dtype)
    if dtype is not None:
        x = x.to(dtype)

    def loss_one(p: ParamDict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return stable_cross_entropy(logits, yi.unsqueeze(0))

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return {k: g.mul_(g) for k, g in grads.items()}  # squared in place: no second copy


def code_fisher(
    model: nn.Module,
    codes: torch.Tensor,
    normalize: bool = False,
    dtype: torch.dtype | None = None,
) -> ParamDict:
    """Per-class Fisher from the mnemonic codes: one code per class.

    codes: (C, *input_shape), code c has label c -> {name: (C, *param_shape)}, in the
    model's dtype. With ``normalize``, each code's squared gradient is divided by its sum over
    all parameters (its squared gradient norm), so that every class weighs the same however
    confidently the model has memorised its code. ``dtype`` is the compute precision.
    """
    labels = torch.arange(codes.shape[0], device=codes.device)
    out_dtype = next(model.parameters()).dtype
    sq = per_sample_sq_grads(model, codes, labels, dtype=dtype)
    if normalize:
        sq = normalize_per_sample(sq)
    return {k: v.to(out_dtype) for k, v in sq.items()}


def normalize_per_sample(sq: ParamDict) -> ParamDict:
    """Divide each sample's squared gradient {name: (N, ...)} by its total over all parameters."""
    total = sum(v.flatten(1).sum(1) for v in sq.values())
    total = torch.where(total > 0, total, torch.ones_like(total))
    return {k: v / total.view(-1, *[1] * (v.dim() - 1)) for k, v in sq.items()}


def fisher_by_class(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    batch_size: int = 512,
) -> tuple[ParamDict, torch.Tensor]:
    """Per-class mean of the squared per-sample gradients over a dataset ("oracle" FIM).

    x: (N, *input_shape), y: (N,) -> ({name: (C, *param_shape)}, counts (C,)).
    Samples are processed in vectorised chunks of ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    device = next(model.parameters()).device
    sums: ParamDict = {
        k: torch.zeros((num_classes, *p.shape), device=device) for k, p in model.named_parameters()
    }
    counts = torch.zeros(num_classes, device=device)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        sq = per_sample_sq_grads(model, xb, yb)
        for k, v in sq.items():
            sums[k].index_add_(0, yb, v)
        counts += torch.bincount(yb, minlength=num_classes).float()
    denom = counts.clamp(min=1)
    return {k: v / denom.view(-1, *[1] * (v.dim() - 1)) for k, v in sums.items()}, counts


def oracle_fisher(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> ParamDict:
    """Mean squared per-sample gradient over all of ``(x, y)``: {name: param_shape}."""
    device = next(model.parameters()).device
    total: ParamDict = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for start in range(0, x.shape[0], batch_size):
        sq = per_sample_sq_grads(model, x[start : start + batch_size].to(device), y[start : start + batch_size].to(device))
        for k, v in sq.items():
            total[k] += v.sum(0)
    return {k: v / max(1, x.shape[0]) for k, v in total.items()}


def fisher_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ParamDict:
    """The brute-force reference: one backward pass per sample, squared gradients stacked.

    x: (N, *input_shape), y: (N,) -> {name: (N, *param_shape)}. Leaves no ``.grad`` behind.
    """
    params = dict(model.named_parameters())
    out: dict[str, list[torch.Tensor]] = {k: [] for k in params}
    for i in range(x.shape[0]):
        loss = stable_cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(params.values()))
        for k, g in zip(params, grads):
            out[k].append(g.detach().square())
    return {k: torch.stack(v) for k, v in out.items()}


def group_means(sq: ParamDict, groups: Sequence[Sequence[int]], normalize: bool = False) -> list[ParamDict]:
    """Means of per-sample squared gradients {name: (N, ...)} over groups of sample indices,
    in one matrix product per tensor (no per-group copies). With ``normalize`` each sample is
    first divided by its total over all parameters. -> one {name: (...)} per group."""
    n = next(iter(sq.values())).shape[0]
    ref = next(iter(sq.values()))
    weights = torch.zeros(len(groups), n, dtype=ref.dtype, device=ref.device)
    for g, members in enumerate(groups):
        if len(members) == 0:
            raise ValueError("group_means: every group needs at least one sample")
        weights[g, torch.as_tensor(list(members), device=ref.device)] = 1.0 / len(members)
    if normalize:
        total = sum(v.flatten(1).sum(1) for v in sq.values())
        weights = weights / torch.where(total > 0, total, torch.ones_like(total))
    out: list[ParamDict] = [{} for _ in groups]
    for k, v in sq.items():
        m = weights @ v.reshape(n, -1)
        for g in range(len(groups)):
            out[g][k] = m[g].view(v.shape[1:])
    return out


def mean_over(fisher: ParamDict, classes: Iterable[int]) -> ParamDict:
    """Average a per-class Fisher {name: (C, ...)} over ``classes`` -> {name: (...)}."""
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    return {k: v[idx.to(v.device)].mean(0) for k, v in fisher.items()}
