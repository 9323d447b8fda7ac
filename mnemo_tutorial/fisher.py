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

    x: (N, *input_shape), y: (N,) -> ({name: (C, *param_shape)}, counts (C,)). Samples are
    processed in vectorised chunks of ``batch_size`` with :func:`grouped_fisher`.
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
        onehot = nn.functional.one_hot(yb, num_classes).T.to(sums[next(iter(sums))].dtype)
        for c, part in enumerate(grouped_fisher(model, xb, yb, onehot)):
            for k, v in part.items():
                sums[k][c] += v
        counts += onehot.sum(1)
    denom = counts.clamp(min=1)
    return {k: v / denom.view(-1, *[1] * (v.dim() - 1)) for k, v in sums.items()}, counts


def oracle_fisher(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> ParamDict:
    """Mean squared per-sample gradient over all of ``(x, y)``: {name: param_shape}."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    device = next(model.parameters()).device
    total: ParamDict = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        ones = torch.ones(1, xb.shape[0], device=device, dtype=next(iter(total.values())).dtype)
        for k, v in grouped_fisher(model, xb, yb, ones)[0].items():
            total[k] += v
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


def _linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, nn.Linear)}


def grouped_fisher(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    normalize: bool = False,
) -> list[ParamDict]:
    """Weighted sums of squared per-sample gradients, one per row of ``weights`` (G, N):
    ``out[g][name] = sum_n weights[g, n] * (dL_n/dw)^2`` (with ``normalize``, each sample is
    first divided by its squared gradient norm). x: (N, *input_shape), y: (N,).

    For an ``nn.Linear`` layer applied once to (N, in) inputs, a sample's weight gradient is
    the outer product of the loss gradient at the layer's output, delta_n (out,), and its input
    a_n (in,), so ``sum_n w_n (delta_n a_n^T)^2 = (w * delta^2)^T (a^2)``: one matrix product,
    without materialising the per-sample gradients (Goodfellow, 2015). All other parameters
    use :func:`per_sample_sq_grads` (``torch.func.vmap``). Equal to the per-sample route up to
    float rounding (see the tests); the model gets no ``.grad``.
    """
    n = x.shape[0]
    if weights.shape[-1] != n:
        raise ValueError(f"weights must have shape (G, {n}); got {tuple(weights.shape)}")
    linears = _linear_layers(model)
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {k: [] for k in linears}

    def hook(name: str):
        def capture(mod: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
            if not out.requires_grad:
                out = out.detach().requires_grad_()
            seen[name].append((inputs[0].detach(), out))
            return out

        return capture

    handles = [mod.register_forward_hook(hook(name)) for name, mod in linears.items()]
    try:
        with torch.enable_grad():
            logits = model(x)
            fast = {k: v[0] for k, v in seen.items() if len(v) == 1 and v[0][0].dim() == 2}
            loss = stable_cross_entropy(logits, y) * n  # sum of per-sample losses
            deltas = torch.autograd.grad(loss, [out for _, out in fast.values()]) if fast else []
    finally:
        for h in handles:
            h.remove()
    params = dict(model.named_parameters())
    covered: set[str] = set()
    per_sample_totals = torch.zeros(n, dtype=weights.dtype, device=weights.device)
    pieces: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    for (name, (a, _)), d in zip(fast.items(), deltas):
        d2, a2 = d.detach().square(), a.square()
        mod = linears[name]
        pieces[name] = (d2, a2)
        covered.add(f"{name}.weight" if name else "weight")
        per_sample_totals += d2.sum(1) * a2.sum(1)
        if mod.bias is not None:
            covered.add(f"{name}.bias" if name else "bias")
            per_sample_totals += d2.sum(1)
    rest = [k for k in params if k not in covered]
    rest_sq: ParamDict = {}
    if rest:
        full = per_sample_sq_grads(model, x, y)
        rest_sq = {k: full[k] for k in rest}
        for v in rest_sq.values():
            per_sample_totals += v.flatten(1).sum(1)
    w = weights
    if normalize:
        w = w / torch.where(per_sample_totals > 0, per_sample_totals, torch.ones_like(per_sample_totals))
    out: list[ParamDict] = [{} for _ in range(w.shape[0])]
    for name, (d2, a2) in pieces.items():
        prefix = f"{name}." if name else ""
        for g in range(w.shape[0]):
            wd2 = d2 * w[g][:, None]
            out[g][prefix + "weight"] = wd2.T @ a2
            if linears[name].bias is not None:
                out[g][prefix + "bias"] = wd2.sum(0)
    for k, v in rest_sq.items():
        m = w @ v.reshape(n, -1)
        for g in range(w.shape[0]):
            out[g][k] = m[g].view(v.shape[1:])
    return [{k: o[k] for k in params} for o in out]


def class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, N) weights averaging over the samples of each class (0 for a class without samples)."""
    onehot = nn.functional.one_hot(y, num_classes).T.to(torch.get_default_dtype())
    return onehot / onehot.sum(1, keepdim=True).clamp(min=1)
