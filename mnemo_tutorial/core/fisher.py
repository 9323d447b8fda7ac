"""Diagonal Fisher information from per-sample squared gradients.

For a parameter w_i, the diagonal empirical Fisher of the cross-entropy loss L over samples
(x_n, y_n) is ``F_i = mean_n (dL(x_n, y_n)/dw_i)^2``. Everything here is one computation,
weighted sums of per-sample squared gradients, done by :func:`grouped_fisher`:

* ``nn.Linear`` layers through the per-sample outer-product identity (one forward and one
  backward pass with hooks, no per-sample gradient is materialised; Goodfellow, 2015,
  "Efficient per-example gradient computations", arXiv:1510.01799);
* every other parameter through ``torch.func.vmap(torch.func.grad(...))`` (the torch.func
  per-sample-gradient recipe), restricted to those parameters and chunked over samples so
  that at most ``max_elements`` per-sample gradient entries exist at a time.

:func:`per_sample_sq_grads` (vmap over every parameter) and :func:`fisher_loop` (one backward
pass per sample) are the reference implementations the tests compare against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from mnemo_tutorial.utils import module_device

__all__ = [
    "MAX_CHUNK_ELEMENTS",
    "code_fisher",
    "fisher_by_class",
    "fisher_loop",
    "grouped_fisher",
    "oracle_fisher",
    "ParamDict",
    "per_sample_sq_grads",
    "stable_cross_entropy",
]

ParamDict = dict[str, torch.Tensor]

# Largest number of per-sample gradient entries held at once by the torch.func route
# (2**26 float32 values = 256 MiB).
MAX_CHUNK_ELEMENTS = 2**26


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


def _cast(v: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    v = v.detach()
    return v.to(dtype) if dtype is not None and v.is_floating_point() else v


def _squared(g: torch.Tensor) -> torch.Tensor:
    """g**2, in place (no second copy) unless g is an expanded view (an unused parameter's
    zeros)."""
    return g.mul_(g) if g.is_contiguous() else g.square()


def _params_and_buffers(
    model: nn.Module, dtype: torch.dtype | None = None
) -> tuple[ParamDict, ParamDict]:
    params = {k: _cast(v, dtype) for k, v in model.named_parameters()}
    buffers = {k: _cast(v, dtype) for k, v in model.named_buffers()}
    return params, buffers


def per_sample_sq_grads(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None = None
) -> ParamDict:
    """Squared per-sample gradients of the cross-entropy loss (reference implementation).

    x: (N, *input_shape), y: (N,) -> {name: (N, *param_shape)} for every named parameter.
    The model is used as it is (call ``model.eval()`` first for batch-norm or dropout
    models); its parameters get no ``.grad``. The loss is :func:`stable_cross_entropy`.
    ``dtype`` (e.g. ``torch.float64``) computes in another precision without touching the
    model. Memory: N x (number of parameters) values; :func:`grouped_fisher` is the bounded route.
    """
    params, buffers = _params_and_buffers(model, dtype)
    if dtype is not None:
        x = x.to(dtype)

    def loss_one(p: ParamDict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return stable_cross_entropy(logits, yi.unsqueeze(0))

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return {k: _squared(g) for k, g in grads.items()}


def fisher_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ParamDict:
    """The brute-force reference: one backward pass per sample, squared gradients stacked.

    x: (N, *input_shape), y: (N,) -> {name: (N, *param_shape)}. Leaves no ``.grad`` behind.
    """
    params = dict(model.named_parameters())
    out: dict[str, list[torch.Tensor]] = {k: [] for k in params}
    for i in range(x.shape[0]):
        loss = stable_cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for k, g in zip(params, grads):
            out[k].append(torch.zeros_like(params[k]) if g is None else g.detach().square())
    return {k: torch.stack(v) for k, v in out.items()}


def _join(module: str, attr: str) -> str:
    return f"{module}.{attr}" if module else attr


def _check_params(model: nn.Module, params: Sequence[str] | None) -> list[str]:
    names = [k for k, _ in model.named_parameters()]
    if params is None:
        return names
    if isinstance(params, str) or not list(params) or not set(params) <= set(names):
        raise ValueError(
            f"params must name parameter tensors of the model ({', '.join(names)}); got {params!r}"
        )
    wanted = set(params)
    return [k for k in names if k in wanted]


def _shared_parameters(model: nn.Module) -> set[int]:
    """ids of the Parameters registered in more than one place (tied weights)."""
    count: dict[int, int] = {}
    for mod in model.modules():
        for _, p in mod.named_parameters(recurse=False, remove_duplicate=False):
            count[id(p)] = count.get(id(p), 0) + 1
    return {i for i, c in count.items() if c > 1}


def _fast_linears(model: nn.Module, wanted: set[str]) -> dict[str, nn.Linear]:
    """``nn.Linear`` modules with a tensor in ``wanted`` whose parameters no other module holds.

    Contributions are keyed by Parameter identity: a Parameter tied to another module's
    (one Parameter, two registrations) takes the general route, which adds up every use.
    """
    shared = _shared_parameters(model)
    out = {}
    for n, m in model.named_modules():
        if not isinstance(m, nn.Linear) or not {_join(n, "weight"), _join(n, "bias")} & wanted:
            continue
        if any(id(p) in shared for p in m.parameters(recurse=False)):
            continue
        out[n] = m
    return out


def _uses(loss: torch.Tensor) -> dict[int, int]:
    """For each leaf tensor on the autograd graph of ``loss`` (keyed by ``id``): how many edges
    of the graph lead to it, i.e. how many times the computation used it."""
    counts: dict[int, int] = {}
    seen: set[int] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            leaf = getattr(nxt, "variable", None)
            if leaf is not None:
                counts[id(leaf)] = counts.get(id(leaf), 0) + 1
            stack.append(nxt)
    return counts


Calls = dict[str, list[tuple[torch.Tensor, torch.Tensor]]]


def _single_calls(seen: Calls, n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The Linear layers called exactly once, on (n, in) input, with an output that depends on
    the parameters: name -> (input, output)."""
    return {
        k: v[0]
        for k, v in seen.items()
        if len(v) == 1 and v[0][0].dim() == 2 and v[0][0].shape[0] == n and v[0][1].requires_grad
    }


def _linear_pass(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    x: torch.Tensor,
    y: torch.Tensor,
    wanted: set[str],
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Squared loss gradients at the outputs (N, out) and squared inputs (N, in) of every
    ``nn.Linear`` with a tensor in ``wanted`` that holds no shared Parameter, is called
    exactly once, on (N, in) input, and whose weight and bias the autograd graph of the loss
    uses once (a weight also used elsewhere, e.g. in a matmul, takes the general route: the
    per-sample outer products would miss that use). The graph tells exactly, where comparing
    summed gradients would need a tolerance and a second gradient of every weight."""
    linears = _fast_linears(model, wanted)
    if not linears:
        return {}
    seen: Calls = {k: [] for k in linears}

    def hook(name: str) -> Callable[..., None]:
        return lambda mod, inputs, out: seen[name].append((inputs[0].detach(), out))

    handles = [mod.register_forward_hook(hook(name)) for name, mod in linears.items()]
    try:
        with torch.enable_grad():
            leaves = {
                k: v.detach().requires_grad_() if v.is_floating_point() else v
                for k, v in params.items()
            }
            logits = functional_call(model, (leaves, buffers), (x,))
            loss = stable_cross_entropy(logits, y) * x.shape[0]
            fast = _single_calls(seen, x.shape[0])
            uses = _uses(loss)
            fast = {
                k: v
                for k, v in fast.items()
                if all(
                    uses.get(id(leaves[_join(k, a)]), 0) <= 1
                    for a in ("weight", "bias")
                    if getattr(linears[k], a) is not None
                )
            }
            outs = [out for _, out in fast.values()]
            grads = torch.autograd.grad(loss, outs, allow_unused=True) if fast else ()
    finally:
        for h in handles:
            h.remove()
    deltas = [torch.zeros_like(o) if d is None else d.detach() for o, d in zip(outs, grads)]
    return {name: (d.square(), a.square()) for (name, (a, _)), d in zip(fast.items(), deltas)}


def _linear_pieces(
    model: nn.Module, pass_out: dict[str, tuple[torch.Tensor, torch.Tensor]], wanted: set[str]
) -> tuple[dict[str, tuple[str, torch.Tensor, torch.Tensor | None]], torch.Tensor | None]:
    """Per covered tensor name: (kind, d2, a2); and the per-sample totals over those tensors."""
    pieces: dict[str, tuple[str, torch.Tensor, torch.Tensor | None]] = {}
    totals = None
    for name, (d2, a2) in pass_out.items():
        prefix = f"{name}." if name else ""
        d2_sum = d2.sum(1)
        if prefix + "weight" in wanted:
            pieces[prefix + "weight"] = ("weight", d2, a2)
            totals = d2_sum * a2.sum(1) + (0 if totals is None else totals)
        mod = model.get_submodule(name)
        if mod.bias is not None and prefix + "bias" in wanted:
            pieces[prefix + "bias"] = ("bias", d2, None)
            totals = d2_sum + (0 if totals is None else totals)
    return pieces, totals


def _normalised(w: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
    return w / torch.where(totals > 0, totals, torch.ones_like(totals))


def grouped_fisher(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    normalize: bool = False,
    params: Sequence[str] | None = None,
    dtype: torch.dtype | None = None,
    *,
    max_elements: int = MAX_CHUNK_ELEMENTS,
) -> list[ParamDict]:
    """Weighted sums of squared per-sample gradients, one per row of ``weights`` (G, N):
    ``out[g][name] = sum_n weights[g, n] * s_n * (dL_n/dw)^2`` for the tensors ``params``
    (default: every named parameter, trainable or not), x: (N, *input_shape), y: (N,).

    ``s_n = 1``, or with ``normalize`` 1 / (sample n's squared gradient summed over the tensors
    ``params`` only). For an ``nn.Linear`` called once on (N, in) inputs, a sample's weight
    gradient is delta_n a_n^T, so ``sum_n w_n (delta_n a_n^T)^2 = (w * delta^2)^T (a^2)`` (one
    matrix product; Goodfellow, 2015). The other tensors of ``params`` (convolutions,
    normalisation layers, a Linear reused or applied to 3-D input) use torch.func's
    vmap(grad) over chunks of samples holding at most ``max_elements`` per-sample entries.
    ``dtype`` is the compute precision (default the model's); results are in it. The model
    is used as it is (``eval()`` it first for batch norm) and gets no ``.grad``.
    -> G dicts {name: param_shape}, in the model's parameter order.
    """
    n = x.shape[0]
    if weights.dim() != 2 or weights.shape[1] != n:
        raise ValueError(f"weights must have shape (G, {n}); got {tuple(weights.shape)}")
    names = _check_params(model, params)
    wanted = set(names)
    p_all, buffers = _params_and_buffers(model, dtype)
    x = x.to(dtype) if dtype is not None and x.is_floating_point() else x
    pieces, totals = _linear_pieces(
        model, _linear_pass(model, p_all, buffers, x, y, wanted), wanted
    )
    rest = [k for k in names if k not in pieces]
    work_dtype = next((p_all[k].dtype for k in names), x.dtype)
    w = weights.to(device=x.device, dtype=work_dtype)
    totals = torch.zeros(n, dtype=work_dtype, device=x.device) if totals is None else totals
    out = _rest_fisher(model, p_all, buffers, x, y, w, rest, totals, normalize, max_elements)
    if normalize:
        w = _normalised(w, totals)
    for k, (kind, d2, a2) in pieces.items():
        wd2 = w[:, :, None] * d2[None]  # (G, N, out)
        # a2 is None exactly for a bias (see _linear_pieces)
        out[k] = wd2.transpose(1, 2) @ a2 if kind == "weight" and a2 is not None else wd2.sum(1)
    return [{k: out[k][g] for k in names} for g in range(w.shape[0])]


def _rest_fisher(
    model: nn.Module,
    p_all: ParamDict,
    buffers: ParamDict,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    rest: list[str],
    totals: torch.Tensor,
    normalize: bool,
    max_elements: int,
) -> ParamDict:
    """The weighted reduction for the tensors ``rest`` by vmap(grad) over sample chunks.
    Adds each sample's total over ``rest`` to ``totals`` in place. -> {name: (G, *shape)}."""
    if not rest:
        return {}
    fixed = {k: v for k, v in p_all.items() if k not in rest}
    moving = {k: p_all[k] for k in rest}
    size = sum(v.numel() for v in moving.values())
    chunk = max(1, min(x.shape[0], max_elements // max(1, size)))

    def loss_one(p: ParamDict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, ({**fixed, **p}, buffers), (xi.unsqueeze(0),))
        return stable_cross_entropy(logits, yi.unsqueeze(0))

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))
    out = {
        k: torch.zeros(w.shape[0], *v.shape, dtype=w.dtype, device=w.device)
        for k, v in moving.items()
    }
    for start in range(0, x.shape[0], chunk):
        sl = slice(start, start + chunk)
        sq = {k: _squared(g) for k, g in per_sample(moving, x[sl], y[sl]).items()}
        totals[sl] += sum(v.flatten(1).sum(1) for v in sq.values())
        wc = _normalised(w[:, sl], totals[sl]) if normalize else w[:, sl]
        for k, v in sq.items():
            out[k] += (wc @ v.reshape(v.shape[0], -1)).view(out[k].shape)
    return out


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
    num = codes.shape[0]
    labels = torch.arange(num, device=codes.device)
    out_dtype = next((p.dtype for p in model.parameters()), codes.dtype)
    eye = torch.eye(num, device=codes.device)
    per = grouped_fisher(model, codes, labels, eye, normalize=normalize, dtype=dtype)
    return {k: torch.stack([p[k] for p in per]).to(out_dtype) for k in per[0]}


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")


def fisher_by_class(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    batch_size: int = 512,
) -> tuple[ParamDict, torch.Tensor]:
    """Per-class mean of the squared per-sample gradients over a dataset ("oracle" FIM).

    x: (N, *input_shape), y: (N,) -> ({name: (C, *param_shape)}, counts (C,)). Samples are
    processed in chunks of ``batch_size`` with :func:`grouped_fisher` (one-hot weights).
    """
    _check_batch_size(batch_size)
    device = module_device(model)
    sums: ParamDict = {
        k: torch.zeros((num_classes, *p.shape), device=device, dtype=p.dtype)
        for k, p in model.named_parameters()
    }
    counts = torch.zeros(num_classes, device=device)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        onehot = nn.functional.one_hot(yb, num_classes).T.float()
        for c, part in enumerate(grouped_fisher(model, xb, yb, onehot)):
            for k, v in part.items():
                sums[k][c] += v
        counts += onehot.sum(1)
    denom = counts.clamp(min=1)
    return {
        k: v / denom.view(-1, *[1] * (v.dim() - 1)).to(v.dtype) for k, v in sums.items()
    }, counts


def oracle_fisher(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> ParamDict:
    """Mean squared per-sample gradient over all of ``(x, y)``: {name: param_shape}.

    x: (N, *input_shape), y: (N,); chunks of ``batch_size`` samples through :func:`grouped_fisher`.
    """
    _check_batch_size(batch_size)
    device = module_device(model)
    total: ParamDict = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        ones = torch.ones(1, xb.shape[0], device=device)
        for k, v in grouped_fisher(model, xb, yb, ones)[0].items():
            total[k] += v
    return {k: v / max(1, x.shape[0]) for k, v in total.items()}
