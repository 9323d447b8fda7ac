"""One-shot forgetting with mnemonic codes (Yamashita et al., "One-Shot Machine Unlearning with
Mnemonic Codes", ACML 2024).

:func:`forget` computes each class's diagonal Fisher from its mnemonic code, the sensitivity
eta = f_F / (f_R + EPS) of every parameter to the forgotten classes, and moves every
parameter by ``sign * alpha_l * eta`` with a per-tensor step alpha_l = min(lambda1, lambda2 /
max eta_l). The pair (lambda1, lambda2) and the sign come from one of three selections:
"data-free" (codes only), "validation" (a held-out split) or "fixed" (given values).
A selection whose criterion is not met is reported (``report.status == "failed"``, the
diagnosis in ``report.details["diagnosis"]``) and, by default, raised as :class:`ForgetFailed`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .checks import check_forget_classes, check_positive
from .codes import MnemonicCodes
from .fisher import ParamDict, grouped_fisher
from .utils import module_device

EPS = 1e-16  # added to f_R in eta = f_F / (f_R + EPS)
DEFAULT_MARGIN = 8.0  # logits by which every forget code must fall below the best remaining class
PAPER_LAMBDAS = (1e-3, 10.0)  # the paper's MNIST (lambda1, lambda2); profiles.MNIST_PAPER_LAMBDAS
VERIFY_TOLERANCE = 2.0  # percentage points: verify fails if A_R drops more or E_F < 100 - this
STEP_DIGITS = 12  # candidate steps equal to this many digits are the same candidate
SELECTIONS = ("data-free", "validation", "fixed")
ON_FAILURE = ("raise", "warn", "return")

# The paper's grid (lambda1 in 1e-6..1, lambda2 in 1e-1..1e5), in half-decade steps.
LAMBDA1_GRID: tuple[float, ...] = tuple(10.0 ** (e / 2) for e in range(-12, 1))
LAMBDA2_GRID: tuple[float, ...] = tuple(10.0 ** (e / 2) for e in range(-2, 11))


def sensitivity(f_forget: ParamDict, f_remain: ParamDict, eps: float = EPS) -> ParamDict:
    """eta_i = f_F,i / (f_R,i + eps) (default ``EPS``), NaN -> 0 and +inf -> the largest finite float."""
    out = {}
    for k in f_forget:
        eta = f_remain[k] + eps
        torch.div(f_forget[k], eta, out=eta)
        out[k] = eta.nan_to_num_(nan=0.0, posinf=torch.finfo(eta.dtype).max)
    return out


def layer_steps(eta: ParamDict, lambda1: float, lambda2: float) -> dict[str, float]:
    """Per-tensor step alpha_l = min(lambda1, lambda2 / max_{i in l} eta_i)."""
    return _steps_from_maxima(_maxima(eta), lambda1, lambda2)


def _maxima(eta: ParamDict) -> dict[str, float]:
    return {k: (float(v.max()) if v.numel() else 0.0) for k, v in eta.items()}


def _steps_from_maxima(maxima: dict[str, float], lambda1: float, lambda2: float) -> dict[str, float]:
    return {k: lambda1 if m <= 0 else min(lambda1, lambda2 / m) for k, m in maxima.items()}


def perturbation(eta: ParamDict, steps: dict[str, float], sign: int) -> ParamDict:
    """Delta w_i = sign * alpha_l * eta_i for every tensor l of ``eta``."""
    return {k: sign * steps[k] * v for k, v in eta.items()}


@dataclass
class ForgetReport:
    """What a forgetting method did. ``seconds`` is the wall clock of the whole call;
    ``status`` is "ok" or "failed" (the method's criterion not met, see ``details``).
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
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
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


@dataclass
class _Choice:
    lambda1: float
    lambda2: float
    steps: dict[str, float]
    sign: int
    criterion_met: bool
    info: dict = field(default_factory=dict)


@dataclass
class _Grid:
    """Distinct candidate steps on a (lambda1, lambda2) grid, smallest perturbation first:
    ``steps`` (K, L) float64 over the tensors ``names``, ``lambdas`` K pairs, ``norms`` ||Delta||."""

    names: list[str]
    lambdas: list[tuple[float, float]]
    steps: torch.Tensor
    norms: list[float]

    def step_dict(self, i: int) -> dict[str, float]:
        return dict(zip(self.names, self.steps[i].tolist()))


def _sq_norm(v: torch.Tensor, vmax: float) -> float:
    """||v||^2 of a non-negative tensor with maximum ``vmax``, without overflow (scaled by vmax)."""
    if vmax <= 0:
        return 0.0
    flat = v.flatten()
    direct = float(torch.dot(flat, flat))
    if direct != float("inf"):
        return direct
    u = flat * (1.0 / vmax)
    return float(torch.dot(u, u)) * vmax * vmax


def _candidates(eta: ParamDict, grids: tuple[Sequence[float], Sequence[float]]) -> _Grid:
    """The grid's distinct per-tensor steps (equal to ``STEP_DIGITS`` decimals = one candidate),
    sorted by the perturbation norm, then lambda1, then lambda2."""
    names, maxima = list(eta), _maxima(eta)
    sq_norms = [_sq_norm(eta[k], maxima[k]) for k in names]
    seen: dict[tuple, tuple[float, float, float, list[float]]] = {}
    for l1 in grids[0]:
        for l2 in grids[1]:
            row = list(_steps_from_maxima(maxima, l1, l2).values())
            key = tuple(round(v, STEP_DIGITS) for v in row)
            if key not in seen:
                seen[key] = (sum(a * a * q for a, q in zip(row, sq_norms)) ** 0.5, l1, l2, row)
    ordered = sorted(seen.values(), key=lambda c: c[:3])
    steps = torch.tensor([c[3] for c in ordered], dtype=torch.float64).view(len(ordered), len(names))
    return _Grid(names, [(c[1], c[2]) for c in ordered], steps, [c[0] for c in ordered])


# Largest number of values (perturbed parameters plus activations) one batched probe call holds.
PROBE_BUDGET = 2**24
# The structural fast route is used only if it reproduces the plain forward to this relative error.
FAST_PATH_RTOL = 1e-4
# Candidates in the first batched probe call of a scan (later calls double it). On the quick
# MNIST model the data-free scan stops within its first 45 candidates for every class.
FIRST_CHUNK = 48


class _Probe:
    """Logits of the model with the tensors of ``eta`` moved by ``s_l * eta_l`` (rows s of signed
    per-tensor steps), on fixed inputs x (n, *input) with labels y (n,), many candidates at once.

    Generic route: ``torch.func.functional_call`` with the perturbed tensors, one candidate at
    a time. Fast route (:meth:`enable_fast`), derived from the model's structure: an
    ``nn.Linear`` called once on an input ``a`` that depends on no moved tensor outputs
    ``W a + b + s_W (E_W a) + s_b e_b``, so ``W a + b`` and ``E_W a`` are computed once and only
    what follows is recomputed, for a chunk of candidates in one ``torch.func.vmap`` call. It
    is kept only if it reproduces the generic route on the largest candidate.
    """

    def __init__(self, model: nn.Module, work: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 eta: ParamDict, classes: list[int], num_classes: int):
        self.model, self.work, self.x, self.y, self.eta = model, work, x, y, eta
        self.params = {k: v.detach() for k, v in model.named_parameters()}
        self.buffers = {k: v.detach() for k, v in model.named_buffers()}
        fmask = torch.zeros(num_classes, dtype=torch.bool, device=y.device)
        fmask[classes] = True
        self.forget_idx, self.remain_idx = torch.nonzero(fmask[y]).view(-1), torch.nonzero(~fmask[y]).view(-1)
        self.remain_classes = torch.nonzero(~fmask).view(-1)
        self.names = list(eta)
        self.dtype = next(iter(eta.values())).dtype if eta else x.dtype
        self.cached: dict[str, tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = {}
        self.chunk = 0  # candidates per fast call; 0: the generic route
        self._row: torch.Tensor | None = None

    @torch.no_grad()
    def logits(self, rows: torch.Tensor) -> torch.Tensor:
        """(K, n, C) logits for signed steps ``rows`` (K, L) (column l: tensor ``names[l]``)."""
        rows = rows.to(dtype=self.dtype, device=self.x.device)
        if self.chunk:
            return torch.cat([self._fast(rows[i : i + self.chunk]) for i in range(0, len(rows), self.chunk)])
        return torch.stack([self._generic(row, self.x) for row in rows])

    def _generic(self, row: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        steps = row.tolist()
        moved = {k: torch.add(self.params[k], self.eta[k], alpha=steps[j]) for j, k in enumerate(self.names)}
        return torch.func.functional_call(self.model, ({**self.params, **moved}, self.buffers), (x,))

    def _fast(self, rows: torch.Tensor) -> torch.Tensor:
        rest = [(j, k) for j, k in enumerate(self.names) if k.rpartition(".")[0] not in self.cached]

        def one(row: torch.Tensor) -> torch.Tensor:
            self._row = row
            moved = {k: self.params[k] + row[j] * self.eta[k] for j, k in rest}
            return torch.func.functional_call(self.work, moved, (self.x,))

        with self._patched():
            return torch.func.vmap(one)(rows)

    @contextmanager
    def _patched(self):
        """Replace the forward of each cached Linear of the working copy by its cached affine form."""
        index = {k: j for j, k in enumerate(self.names)}
        saved = {name: vars(self.work.get_submodule(name)).get("forward") for name in self.cached}
        for name, (base, e_w, e_b) in self.cached.items():
            jw, jb = index.get(_join(name, "weight")), index.get(_join(name, "bias"))

            def forward(_inp, base=base, e_w=e_w, e_b=e_b, jw=jw, jb=jb):
                out = base if e_w is None else base + self._row[jw] * e_w
                return out if e_b is None else out + self._row[jb] * e_b

            self.work.get_submodule(name).forward = forward
        try:
            yield
        finally:
            for name, previous in saved.items():
                mod = self.work.get_submodule(name)
                if previous is None:
                    del mod.forward
                else:  # a forward the model had set on the instance itself
                    mod.forward = previous

    def enable_fast(self, test_row: torch.Tensor) -> str:
        """Set up the fast route; keep it if it matches the generic route (on the first input)
        for the signed steps ``test_row`` (L,). -> "fast" or "generic"."""
        try:
            self.cached, per_candidate = _cacheable_linears(self.model, self.params, self.buffers, self.eta, self.x)
            self.chunk = max(1, PROBE_BUDGET // max(1, per_candidate))
            row = test_row.to(dtype=self.dtype, device=self.x.device)
            fast = self.logits(row[None])[0, :1]
            with torch.no_grad():
                ref = self._generic(row, self.x[:1])
            ok = bool(torch.isfinite(fast).all()) and float((fast - ref).abs().max()) <= FAST_PATH_RTOL * (float(ref.abs().max()) + 1)
        except Exception:  # a model the structural route cannot handle: the generic route
            ok = False
        if not ok:
            self.cached, self.chunk = {}, 0
        return "fast" if ok else "generic"

    def code_stats(self, z: torch.Tensor) -> list[dict]:
        """Per candidate of logits z (K, n, C): forget_depth = min over forget samples of
        (best remaining-class logit - own logit); remain_margin = min over remaining samples of
        (own logit - best other logit); remain_ok (every remaining sample keeps its class);
        clean (also no forget sample predicted as its class); score = forget error + remaining accuracy."""
        y = self.y.expand(z.shape[0], -1)
        own = z.gather(2, y[..., None]).squeeze(2)
        best_remaining = z.index_select(2, self.remain_classes).amax(2)
        others = z.scatter(2, y[..., None], float("-inf")).amax(2)
        correct = (z.argmax(2) == y).to(z.dtype)
        c_forget, c_remain = correct.index_select(1, self.forget_idx), correct.index_select(1, self.remain_idx)
        remain_ok = _min_or(c_remain, 1.0)  # 1.0: every remaining sample keeps its class
        cols = torch.stack([
            _min_or((best_remaining - own).index_select(1, self.forget_idx), float("inf")),
            _min_or((own - others).index_select(1, self.remain_idx), float("inf")),
            remain_ok, remain_ok * (1 - _max_or(c_forget, 0.0)),
            (1 - c_forget.mean(1) if c_forget.shape[1] else 0 * own[:, 0]) + (c_remain.mean(1) if c_remain.shape[1] else 0),
        ]).tolist()
        return [{"forget_depth": d, "remain_margin": r, "remain_ok": ok > 0, "clean": cl > 0, "score": sc}
                for d, r, ok, cl, sc in zip(*cols)]

    def scan(self, grid: _Grid, sign: int):
        """Yield code_stats per candidate of ``grid`` with ``sign``, in order, computed in calls
        that double from ``FIRST_CHUNK`` candidates (a scan that stops early evaluates few)."""
        start, step = 0, min(FIRST_CHUNK, self.chunk or 1)
        while start < len(grid.lambdas):
            yield from self.code_stats(self.logits(sign * grid.steps[start : start + step]))
            start, step = start + step, min(2 * step, self.chunk or 1)


def _min_or(t: torch.Tensor, empty: float) -> torch.Tensor:
    """Row minima of t (K, m); ``empty`` for every row when m == 0 (no such samples)."""
    return t.amin(1) if t.shape[1] else torch.full(t.shape[:1], empty, dtype=t.dtype, device=t.device)


def _max_or(t: torch.Tensor, empty: float) -> torch.Tensor:
    return t.amax(1) if t.shape[1] else torch.full(t.shape[:1], empty, dtype=t.dtype, device=t.device)


def _join(module: str, attr: str) -> str:
    return f"{module}.{attr}" if module else attr


def _cacheable_linears(
    model: nn.Module, params: ParamDict, buffers: ParamDict, eta: ParamDict, x: torch.Tensor,
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]], int]:
    """The ``nn.Linear`` layers with a moved tensor, called once, on an input that depends on
    no moved tensor (autograd tells): name -> (W a + b, E_W a or None, e_b or None); and the
    values one fast-route candidate holds (moved tensors not cached plus activations)."""
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    acts = [0]

    def hook(name: str):
        def record(mod: nn.Module, inputs: tuple, out) -> None:
            if isinstance(mod, nn.Linear):
                seen.setdefault(name, []).append((inputs[0], out))
            if isinstance(out, torch.Tensor) and out.requires_grad and not list(mod.children()):
                acts[0] += out.numel()  # depends on a moved tensor: one copy per candidate
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        with torch.enable_grad():
            leaves = {k: params[k].detach().requires_grad_() for k in eta}  # fresh aliases
            torch.func.functional_call(model, ({**params, **leaves}, buffers), (x,))
    finally:
        for h in handles:
            h.remove()
    cached = {}
    with torch.no_grad():
        for name, calls in seen.items():
            w, b = _join(name, "weight"), _join(name, "bias")
            if len(calls) != 1 or calls[0][0].requires_grad or not ({w, b} & set(eta)):
                continue
            a, base = calls[0][0].detach(), calls[0][1].detach()  # base = W a + b, unperturbed
            cached[name] = (base, nn.functional.linear(a, eta[w]) if w in eta else None, eta.get(b))
    moved_rest = sum(v.numel() for k, v in eta.items() if k.rpartition(".")[0] not in cached)
    return cached, moved_rest + acts[0]


def class_fisher_ratio(
    model: nn.Module, code_tensor: torch.Tensor, classes: list[int], *, normalize: bool = True,
    dtype: torch.dtype | None = None, params: Sequence[str] | None = None,
) -> ParamDict:
    """eta = f_F / (f_R + EPS) for the tensors ``params`` (default all), from the codes (C, *input).

    f_F (f_R) is the mean over the forgotten (remaining) classes of each code's squared
    gradient, with ``normalize`` divided by its total over the tensors ``params``. Tensors
    whose eta is zero everywhere (they would not move) are left out. In the model's dtype.
    """
    num_classes = code_tensor.shape[0]
    remain = [c for c in range(num_classes) if c not in classes]
    weights = torch.zeros(2, num_classes, device=code_tensor.device)
    weights[0, classes] = 1.0 / len(classes)
    weights[1, remain] = 1.0 / len(remain)
    labels = torch.arange(num_classes, device=code_tensor.device)
    f_forget, f_remain = grouped_fisher(model, code_tensor, labels, weights, normalize, params, dtype)
    model_dtypes = dict((k, p.dtype) for k, p in model.named_parameters())
    eta = sensitivity(f_forget, f_remain)
    return {k: v.to(model_dtypes[k]) for k, v in eta.items() if v.numel() and float(v.max()) > 0}


def _row(names: list[str], steps: dict[str, float], sign: int) -> torch.Tensor:
    return torch.tensor([[sign * steps[k] for k in names]], dtype=torch.float64).view(1, len(names))


def _order_signs(probe: _Probe, eta: ParamDict, signs: tuple[int, ...], paper: tuple[float, float]) -> list[int]:
    """The paper's sign rule: first the sign whose model at the paper's lambdas scores higher
    on the codes (ties: the deeper forget-code margin)."""
    ref = layer_steps(eta, *paper)
    stats = probe.code_stats(probe.logits(torch.cat([_row(probe.names, ref, s) for s in signs])))
    by_sign = dict(zip(signs, stats))
    return sorted(signs, key=lambda s: (-by_sign[s]["score"], -by_sign[s]["forget_depth"]))


def select_data_free(
    probe: _Probe, eta: ParamDict, grid: _Grid, signs: tuple[int, ...], margin: float, paper: tuple[float, float],
) -> _Choice:
    """The smallest perturbation on the grid after which every forget code is at least
    ``margin`` logits below the best remaining class while every remaining code keeps its
    class (codes only). Signs in the paper's order; the second is scanned only if the first
    finds nothing. Not met: the candidate that pushes the forget codes deepest while keeping
    every remaining code (or, if every candidate loses one, the paper's lambdas), with
    ``criterion_met`` False."""
    order = _order_signs(probe, eta, signs, paper)
    evaluated, fallback = len(signs), None
    for s in order:
        for i, st in enumerate(probe.scan(grid, s)):
            evaluated += 1
            if st["remain_ok"] and st["forget_depth"] >= margin:
                return _Choice(*grid.lambdas[i], grid.step_dict(i), s, True, {"candidates_evaluated": evaluated})
            if st["remain_ok"] and (fallback is None or st["forget_depth"] > fallback[0]):
                fallback = (st["forget_depth"], i, s)
    info = {"candidates_evaluated": evaluated, "fallback": "deepest" if fallback else "paper"}
    if fallback is not None:
        return _Choice(*grid.lambdas[fallback[1]], grid.step_dict(fallback[1]), fallback[2], False, info)
    return _Choice(*paper, layer_steps(eta, *paper), order[0], False, info)


def select_on_validation(probe: _Probe, grid: _Grid, signs: tuple[int, ...], code_probe: _Probe) -> _Choice:
    """The grid point and sign maximising E_F + A_R on the validation split held by ``probe``
    (ties: the smaller perturbation). Criterion, on the codes (``code_probe``): no forget code
    keeps its class and every remaining code does."""
    best = None
    for s in signs:
        for i, st in enumerate(probe.scan(grid, s)):
            key = (st["score"], -grid.norms[i])
            if best is None or key > best[0]:
                best = (key, i, s)
    (score, _), i, s = best
    met = code_probe.code_stats(code_probe.logits(s * grid.steps[i : i + 1]))[0]["clean"]
    info = {"validation_score": score, "validation_size": int(probe.y.numel())}
    return _Choice(*grid.lambdas[i], grid.step_dict(i), s, met, info)


def select_fixed(probe: _Probe, eta: ParamDict, lambdas: tuple[float, float], signs: tuple[int, ...]) -> _Choice:
    """The given (lambda1, lambda2) and the sign that scores higher on the codes (ties: +1).
    Criterion: on the codes, no forget code keeps its class and every remaining code does."""
    steps = layer_steps(eta, *lambdas)
    stats = probe.code_stats(probe.logits(torch.cat([_row(probe.names, steps, s) for s in signs])))
    best = max(range(len(signs)), key=lambda j: (stats[j]["score"], -j))
    return _Choice(lambdas[0], lambdas[1], steps, signs[best], stats[best]["clean"])


def apply_step(model: nn.Module, eta: ParamDict, steps: dict[str, float], sign: int) -> None:
    """In place: w <- w + sign * steps[l] * eta[l] for the tensors of ``eta``; clears ``.grad``."""
    delta = perturbation(eta, steps, sign)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in delta:
                p.add_(delta[name].to(p.dtype))
            p.grad = None


def _check_pair(name: str, value) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (lambda1, lambda2) pair of positive numbers; got {value!r}") from None
    if not (a > 0 and b > 0):
        raise ValueError(f"{name} must be positive; got {value!r}")
    return a, b


def _check_split(name: str, split) -> tuple[torch.Tensor, torch.Tensor] | None:
    if split is None:
        return None
    if not (isinstance(split, (tuple, list)) and len(split) == 2 and all(isinstance(t, torch.Tensor) for t in split)):
        raise ValueError(f"{name} must be an (x, y) pair of tensors; got {type(split).__name__}")
    x, y = split
    if len(y) == 0 or len(x) != len(y):
        raise ValueError(f"{name} must hold at least one sample with as many labels as inputs; got {len(x)} inputs, {len(y)} labels")
    return x, y


def _check_grids(grids) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if grids is None:
        return LAMBDA1_GRID, LAMBDA2_GRID
    message = f"grids must be two non-empty sequences of positive numbers (lambda1s, lambda2s); got {grids!r}"
    try:
        out = tuple(tuple(float(v) for v in g) for g in grids)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if len(out) != 2 or not all(out) or not all(v > 0 for g in out for v in g):
        raise ValueError(message)
    return out


def _check_options(selection, lambdas, sign, validation, margin, paper_lambdas, grids, verify, on_failure, fisher_dtype) -> dict:
    """All argument checks of :func:`forget` (one-line ValueErrors before any slow work)."""
    if lambdas == "auto":  # the former spelling of "let forget choose"
        lambdas = None
    if not (lambdas is None or lambdas == "paper"):
        lambdas = _check_pair("lambdas", lambdas)
    if sign not in (None, "auto", 1, -1) or isinstance(sign, bool):
        raise ValueError(f"sign must be None (chosen), 1 or -1; got {sign!r}")
    inferred = "validation" if validation is not None else "fixed" if lambdas is not None else "data-free"
    selection = inferred if selection is None else selection
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)} (or None); got {selection!r}")
    if selection == "validation" and validation is None:
        raise ValueError("validation must be an (x, y) pair when selection='validation'")
    if selection != "fixed" and lambdas is not None:
        raise ValueError(f"lambdas is used by selection='fixed' only; got lambdas={lambdas!r} with selection={selection!r}")
    if selection != "validation" and validation is not None:
        raise ValueError(f"validation is used by selection='validation' only; got selection={selection!r}")
    if on_failure not in ON_FAILURE:
        raise ValueError(f"on_failure must be one of {', '.join(ON_FAILURE)}; got {on_failure!r}")
    if fisher_dtype is not None and not (isinstance(fisher_dtype, torch.dtype) and fisher_dtype.is_floating_point):
        raise ValueError(f"fisher_dtype must be a floating torch.dtype or None; got {fisher_dtype!r}")
    grids = _check_grids(grids)
    paper = _check_pair("paper_lambdas", paper_lambdas)
    return dict(selection=selection, lambdas=paper if lambdas == "paper" else lambdas,
                lambdas_source="paper" if lambdas == "paper" or (selection == "fixed" and lambdas is None) else "given",
                signs=(1, -1) if sign in (None, "auto") else (int(sign),),
                validation=_check_split("validation", validation), verify=_check_split("verify", verify),
                margin=check_positive("margin", margin, allow_zero=True), paper=paper, grids=grids)


def _select(model: nn.Module, work: nn.Module, codes: torch.Tensor, eta: ParamDict, classes: list[int], opts: dict) -> tuple[_Choice, dict]:
    """Run the selection ``opts["selection"]``; -> (choice, diagnosis on the codes)."""
    num_classes, device = codes.shape[0], codes.device
    probe = _Probe(model, work, codes, torch.arange(num_classes, device=device), eta, classes, num_classes)
    grid = _candidates(eta, opts["grids"])
    route = probe.enable_fast(grid.steps[-1])
    if opts["selection"] == "data-free":
        choice = select_data_free(probe, eta, grid, opts["signs"], opts["margin"], opts["paper"])
    elif opts["selection"] == "validation":
        xv, yv = (t.to(device) for t in opts["validation"])
        vprobe = _Probe(model, work, xv, yv, eta, classes, num_classes)
        vprobe.enable_fast(grid.steps[-1])
        choice = select_on_validation(vprobe, grid, opts["signs"], probe)
    else:
        choice = select_fixed(probe, eta, opts["lambdas"] or opts["paper"], opts["signs"])
    rows = torch.cat([torch.zeros(1, len(probe.names), dtype=torch.float64), _row(probe.names, choice.steps, choice.sign)])
    before, after = probe.code_stats(probe.logits(rows))
    criterion = (f"every forget code >= {opts['margin']:g} logits below the best remaining class, every remaining code kept"
                 if opts["selection"] == "data-free" else "no forget code keeps its class, every remaining code kept")
    diagnosis = {
        "criterion": criterion,
        "criterion_met": bool(choice.criterion_met),
        "forget_code_margin": {"before": before["forget_depth"], "after": after["forget_depth"]},
        "remaining_code_margin": {"before": before["remain_margin"], "after": after["remain_margin"]},
        "verification": None,
    }
    choice.info["probe"] = route
    return choice, diagnosis


def _verify(model: nn.Module, new: nn.Module, split: tuple[torch.Tensor, torch.Tensor], classes: list[int], tolerance: float) -> dict:
    """E_F and A_R (percent) of ``new`` and A_R of ``model`` on held-out (x, y); ok when A_R drops
    by at most ``tolerance`` points and E_F >= 100 - ``tolerance`` (if forget samples are present)."""
    from .metrics import predict  # here: metrics loads scikit-learn, which forget needs only for verify=

    x, y = split
    y = y.cpu()
    is_forget = torch.isin(y, torch.tensor(classes))
    before, after = predict(model, x) == y, predict(new, x) == y
    pct = lambda t: float(100.0 * t.float().mean()) if t.numel() else float("nan")  # noqa: E731
    out = {"samples": int(y.numel()), "forget_samples": int(is_forget.sum()), "tolerance": tolerance,
           "E_F": pct(~after[is_forget]), "A_R_before": pct(before[~is_forget]), "A_R_after": pct(after[~is_forget])}
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
    what = ("the held-out check failed" if diag["criterion_met"] else f"the {rep.selection} criterion was not met "
            f"(forget-code margin {diag['forget_code_margin']['after']:.3g}, remaining-code margin "
            f"{diag['remaining_code_margin']['after']:.3g})")
    margins = [diag[k][t] for k in ("forget_code_margin", "remaining_code_margin") for t in ("before", "after")]
    if not all(math.isfinite(m) for m in margins):
        what += "; the code logits are not finite (NaN or inf weights: did training diverge?)"
    elif diag["remaining_code_margin"]["before"] <= 0:
        what += "; the model already misclassifies a remaining code before the step (was it trained with these codes?)"
    message = (f"forgetting classes {rep.forget} failed: {what}; try params= (e.g. the classifier head), "
               f"selection='validation', or on_failure='return' to inspect report.details['diagnosis']")
    if on_failure == "warn":
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return result
    raise ForgetFailed(message, result)


def forget(
    model: nn.Module,
    codes: MnemonicCodes | torch.Tensor,
    classes: Sequence[int] | int,
    *,
    selection: str | None = None,
    lambdas: str | tuple[float, float] | None = None,
    sign: int | None = None,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    margin: float = DEFAULT_MARGIN,
    paper_lambdas: tuple[float, float] = PAPER_LAMBDAS,
    params: Sequence[str] | None = None,
    normalize_fisher: bool = True,
    fisher_dtype: torch.dtype | None = torch.float32,
    grids: tuple[Sequence[float], Sequence[float]] | None = None,
    verify: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_failure: str = "raise",
) -> ForgetResult:
    """One-shot forgetting of ``classes`` with the mnemonic codes (C, *input_shape), code c of class c.

    eta = f_F / (f_R + EPS) from the codes' Fisher of the tensors ``params`` (default all; the
    Fisher and its per-code normalisation are computed over those tensors only, and only they
    move; :func:`class_fisher_ratio`), then w <- w + sign * alpha_l * eta on a copy, with
    alpha_l = min(lambda1, lambda2 / max eta_l) (:func:`layer_steps`, :func:`apply_step`).

    ``selection`` (None: "validation" if ``validation`` is given, "fixed" if ``lambdas`` is,
    else "data-free") on the grid ``grids`` (default ``LAMBDA1_GRID`` x ``LAMBDA2_GRID``):
    "data-free" (:func:`select_data_free`, codes only, criterion: every forget code ``margin``
    logits below the best remaining class, every remaining code kept), "validation"
    (:func:`select_on_validation`, max E_F + A_R on ``validation=(x, y)`` carved from the
    training data), "fixed" (:func:`select_fixed`, ``lambdas`` or "paper"/None =
    ``paper_lambdas``). ``sign`` None: the sign scoring higher on the codes, else 1 or -1.
    ``verify=(x, y)``: held-out samples; A_R dropping by more than ``VERIFY_TOLERANCE`` points
    or E_F < 100 - ``VERIFY_TOLERANCE`` fails the result.

    A failed criterion or verification sets ``report.status = "failed"``; ``on_failure``
    "raise" (default) raises :class:`ForgetFailed` carrying the result, "warn" warns, "return"
    returns. ``report.details["diagnosis"]`` holds criterion_met, the forget-code margin (min
    over forget codes of best remaining logit - own logit) and remaining-code margin (min over
    remaining codes of own logit - best other logit) before and after, and the verification.
    The input model is left as it was (values, train/eval mode, no gradients).
    """
    t0 = time.perf_counter()
    code_tensor = codes.codes if isinstance(codes, MnemonicCodes) else codes
    classes = check_forget_classes(classes, int(code_tensor.shape[0]), name="classes")
    opts = _check_options(selection, lambdas, sign, validation, margin, paper_lambdas, grids, verify, on_failure, fisher_dtype)
    opts.update(normalize_fisher=normalize_fisher, fisher_dtype=fisher_dtype, params=params)
    was_training = model.training
    model.eval()
    try:
        work, choice, diagnosis = _forget_eval(model, code_tensor, classes, opts)
    finally:
        model.train(was_training)
    work.train(was_training)
    if module_device(model).type == "cuda":
        torch.cuda.synchronize()
    return _finish(ForgetResult(model=work, report=_report(classes, opts, choice, diagnosis, t0)), on_failure)


def _forget_eval(model: nn.Module, code_tensor: torch.Tensor, classes: list[int], opts: dict) -> tuple[nn.Module, _Choice, dict]:
    """The steps of :func:`forget` on a model in eval mode: -> (new model, choice, diagnosis)."""
    work = copy.deepcopy(model)
    code_tensor = code_tensor.to(module_device(model))
    eta = class_fisher_ratio(model, code_tensor, classes, normalize=opts["normalize_fisher"],
                             dtype=opts["fisher_dtype"], params=opts["params"])
    choice, diagnosis = _select(model, work, code_tensor, eta, classes, opts)
    apply_step(work, eta, choice.steps, choice.sign)
    if opts["verify"] is not None:
        diagnosis["verification"] = _verify(model, work, opts["verify"], classes, VERIFY_TOLERANCE)
    return work, choice, diagnosis


def _report(classes: list[int], opts: dict, choice: _Choice, diagnosis: dict, t0: float) -> ForgetReport:
    ok = choice.criterion_met and (diagnosis["verification"] or {"ok": True})["ok"]
    details = {"normalize_fisher": opts["normalize_fisher"], "margin": opts["margin"], "diagnosis": diagnosis,
               "criterion_met": bool(choice.criterion_met), **choice.info}
    if opts["params"] is not None:
        details["params"] = list(opts["params"])
    if opts["selection"] == "fixed":
        details["lambdas"] = opts["lambdas_source"]
    return ForgetReport(
        method="mnemonic", forget=classes, seconds=time.perf_counter() - t0, status="ok" if ok else "failed",
        selection=opts["selection"], lambda1=float(choice.lambda1), lambda2=float(choice.lambda2),
        sign=int(choice.sign), steps={k: float(v) for k, v in choice.steps.items()}, details=details,
    )
