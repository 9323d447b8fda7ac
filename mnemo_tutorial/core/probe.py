"""Logits of a model after many candidate steps at once, and what they say on the codes.

:class:`CodeProbe` evaluates the model with the tensors of eta moved by ``s_l * eta_l`` for many
rows ``s`` of signed per-tensor steps, on fixed inputs (the codes, or a validation split). It
works on its own scratch copy of the model, in eta's precision: the caller's model is never
patched, moved or cast.

Generic route: ``torch.func.functional_call`` with the perturbed tensors, one candidate at a
time. Fast route (:meth:`CodeProbe.enable_fast`), derived from the model's structure: an
``nn.Linear`` called once on an input ``a`` that depends on no moved tensor outputs
``W a + b + s_W (E_W a) + s_b e_b``, so ``W a + b`` and ``E_W a`` are computed once and only what
follows is recomputed, for a chunk of candidates in one ``torch.func.vmap`` call. It is kept
only if it reproduces the generic route on the largest candidate.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from mnemo_tutorial.core.fisher import ParamDict

__all__ = [
    "FAST_PATH_RTOL",
    "FIRST_CHUNK",
    "PROBE_BUDGET",
    "SINGLE_MEMO",
    "CodeProbe",
    "CodeStats",
    "best_other_logit",
]

# Largest number of values (perturbed parameters plus activations) one batched probe call holds.
PROBE_BUDGET = 2**24
# The structural fast route is used only if it reproduces the plain forward to this relative error.
FAST_PATH_RTOL = 1e-4
# Candidates in the first batched probe call of a scan (later calls double it). On the quick
# MNIST model the data-free scan stops within its first 45 candidates for every class.
FIRST_CHUNK = 48
# Single rows whose logits a probe keeps (each is n x C values).
SINGLE_MEMO = 4

Cached = dict[str, tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]]


@dataclass(frozen=True)
class CodeStats:
    """What one candidate does on the probe's samples.

    forget_depth: min over forget samples of (best remaining-class logit - own logit);
    remain_margin: min over remaining samples of (own logit - best other logit);
    remain_ok: every remaining sample keeps its class; clean: also no forget sample predicted
    as its class; score: forget error + remaining accuracy (fractions)."""

    forget_depth: float
    remain_margin: float
    remain_ok: bool
    clean: bool
    score: float


def _join(module: str, attr: str) -> str:
    return f"{module}.{attr}" if module else attr


def _min_or(t: torch.Tensor, empty: float) -> torch.Tensor:
    """Row minima of t (K, m); ``empty`` for every row when m == 0 (no such samples)."""
    return (
        t.amin(1) if t.shape[1] else torch.full(t.shape[:1], empty, dtype=t.dtype, device=t.device)
    )


def _max_or(t: torch.Tensor, empty: float) -> torch.Tensor:
    return (
        t.amax(1) if t.shape[1] else torch.full(t.shape[:1], empty, dtype=t.dtype, device=t.device)
    )


def best_other_logit(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K, n): the largest logit of z (K, n, C) other than the label's, from the top two."""
    if z.shape[2] < 2:
        return torch.full(z.shape[:2], float("-inf"), dtype=z.dtype, device=z.device)
    top, idx = z.topk(2, dim=2)
    return torch.where(idx[..., 0] == y, top[..., 1], top[..., 0])


def _cast(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return v.detach().to(dtype) if v.is_floating_point() else v.detach()


class CodeProbe:
    """Logits after signed steps ``rows`` (K, L) on inputs x (n, *input) with labels y (n,).

    model: left untouched (a scratch copy in eta's dtype is made); eta: {name: tensor} of the
    moved tensors, column l of a row is the step of ``names[l]``; classes: the forgotten ones.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eta: ParamDict,
        classes: Sequence[int],
        num_classes: int,
        *,
        _work: nn.Module | None = None,
    ):
        self.eta, self.names = eta, list(eta)
        self.dtype = next(iter(eta.values())).dtype if eta else torch.float32
        self.work = _work if _work is not None else copy.deepcopy(model).to(self.dtype).eval()
        self._own_work = _work is None
        self.params = {k: v.detach() for k, v in self.work.named_parameters()}
        self.buffers = {k: v.detach() for k, v in self.work.named_buffers()}
        self.x, self.y = _cast(x, self.dtype), y
        self.classes, self.num_classes = list(classes), num_classes
        fmask = torch.zeros(num_classes, dtype=torch.bool, device=y.device)
        fmask[self.classes] = True
        self.forget_idx = torch.nonzero(fmask[y]).view(-1)
        self.remain_idx = torch.nonzero(~fmask[y]).view(-1)
        self.remain_classes = torch.nonzero(~fmask).view(-1)
        self.cached: Cached = {}
        self.chunk = 0  # candidates per fast call; 0: the generic route
        self._row: torch.Tensor | None = None
        self._single: dict[tuple[float, ...], torch.Tensor] = {}  # logits of single rows
        self._stats: dict[tuple[float, ...], CodeStats] = {}  # stats of every row asked for

    def handover(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` (the one the probe was made from) for the caller to keep: the
        scratch copy itself where it holds ``model``'s dtypes, saving a second copy; a fresh
        copy otherwise. The probe is spent afterwards (its caches are dropped)."""
        own = self._own_work and all(
            a.dtype == b.dtype
            for a, b in zip(
                itertools.chain(model.parameters(), model.buffers()),
                itertools.chain(self.work.parameters(), self.work.buffers()),
            )
        )
        self._own_work = False
        self.cached, self._single, self._stats = {}, {}, {}
        return self.work if own else copy.deepcopy(model)

    def on(self, x: torch.Tensor, y: torch.Tensor) -> CodeProbe:
        """A probe of the same model and eta on other samples (shares the scratch copy)."""
        return CodeProbe(self.work, x, y, self.eta, self.classes, self.num_classes, _work=self.work)

    def row(self, steps: dict[str, float], sign: int) -> torch.Tensor:
        """The (1, L) row of signed steps for per-tensor ``steps``."""
        return torch.tensor([[sign * steps[k] for k in self.names]], dtype=torch.float64)

    @torch.no_grad()
    def logits(self, rows: torch.Tensor) -> torch.Tensor:
        """(K, n, C) logits for signed steps ``rows`` (K, L) (column l: tensor ``names[l]``).
        The logits of the last :data:`SINGLE_MEMO` single rows asked for are kept: the
        selection and the report ask for some rows more than once (the unperturbed model, the
        chosen step)."""
        if len(rows) != 1:
            return self._logits(rows)
        key = tuple(rows[0].tolist())
        if key not in self._single:
            self._keep(key, self._logits(rows))
        return self._single[key]

    def _logits(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(dtype=self.dtype, device=self.x.device)
        if self.chunk:
            parts = [self._fast(rows[i : i + self.chunk]) for i in range(0, len(rows), self.chunk)]
            return torch.cat(parts)
        return torch.stack([self._generic(row, self.x) for row in rows])

    def _generic(self, row: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        steps = row.tolist()
        moved = {
            k: torch.add(self.params[k], self.eta[k], alpha=steps[j])
            for j, k in enumerate(self.names)
        }
        return torch.func.functional_call(self.work, ({**self.params, **moved}, self.buffers), (x,))

    def _fast(self, rows: torch.Tensor) -> torch.Tensor:
        rest = [(j, k) for j, k in enumerate(self.names) if k.rpartition(".")[0] not in self.cached]

        def one(row: torch.Tensor) -> torch.Tensor:
            self._row = row
            moved = {k: self.params[k] + row[j] * self.eta[k] for j, k in rest}
            return torch.func.functional_call(self.work, moved, (self.x,))

        with self._patched():
            return torch.func.vmap(one)(rows)

    @contextmanager
    def _patched(self) -> Iterator[None]:
        """Replace the forward of each cached Linear of the scratch copy by its affine form."""
        index = {k: j for j, k in enumerate(self.names)}
        saved = {name: vars(self.work.get_submodule(name)).get("forward") for name in self.cached}
        for name, (base, e_w, e_b) in self.cached.items():
            jw, jb = index.get(_join(name, "weight")), index.get(_join(name, "bias"))

            def forward(_inp, base=base, e_w=e_w, e_b=e_b, jw=jw, jb=jb):
                row = self._row
                assert row is not None
                out = base if e_w is None else base + row[jw] * e_w
                return out if e_b is None else out + row[jb] * e_b

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
        for the signed steps ``test_row`` (L,). -> "fast" or "generic".

        A model the structural route cannot trace (torch raises RuntimeError or
        NotImplementedError inside vmap or the hooks) keeps the generic route; other errors
        propagate."""
        try:
            self.cached, per_candidate = _cacheable_linears(
                self.work, self.params, self.buffers, self.eta, self.x
            )
            self.chunk = max(1, PROBE_BUDGET // max(1, per_candidate))
            row = test_row.to(dtype=self.dtype, device=self.x.device)
            fast = self.logits(row[None])[0, :1]
            with torch.no_grad():
                ref = self._generic(row, self.x[:1])
            err = float((fast - ref).abs().max())
            ok = bool(torch.isfinite(fast).all()) and err <= FAST_PATH_RTOL * (
                float(ref.abs().max()) + 1
            )
        except (RuntimeError, NotImplementedError):
            ok = False
        if not ok:
            self.cached, self.chunk = {}, 0
            self._single.clear()  # computed by the route just refused
            self._stats.clear()
        return "fast" if ok else "generic"

    def code_stats(self, z: torch.Tensor) -> list[CodeStats]:
        """Per candidate of logits z (K, n, C): a :class:`CodeStats`."""
        y = self.y.expand(z.shape[0], -1)
        own = z.gather(2, y[..., None]).squeeze(2)
        z_f = z.index_select(1, self.forget_idx)
        best_remaining = z_f.index_select(2, self.remain_classes).amax(2)
        others = best_other_logit(z, y)
        correct = (z.argmax(2) == y).to(z.dtype)
        c_forget = correct.index_select(1, self.forget_idx)
        c_remain = correct.index_select(1, self.remain_idx)
        remain_ok = _min_or(c_remain, 1.0)  # 1.0: every remaining sample keeps its class
        forget_err = 1 - c_forget.mean(1) if c_forget.shape[1] else 0 * own[:, 0]
        remain_acc = c_remain.mean(1) if c_remain.shape[1] else 0 * own[:, 0]
        cols = torch.stack(
            [
                _min_or(best_remaining - own.index_select(1, self.forget_idx), float("inf")),
                _min_or((own - others).index_select(1, self.remain_idx), float("inf")),
                remain_ok,
                remain_ok * (1 - _max_or(c_forget, 0.0)),
                forget_err + remain_acc,
            ]
        ).tolist()
        return [CodeStats(d, r, ok > 0, cl > 0, sc) for d, r, ok, cl, sc in zip(*cols)]

    def stats(self, rows: torch.Tensor) -> list[CodeStats]:
        """:meth:`code_stats` of the logits after ``rows``. The stats of every row are kept
        (the report asks again for the chosen step and the unperturbed model), and the
        logits of a call of at most :data:`SINGLE_MEMO` rows are kept row by row."""
        keys = [tuple(r) for r in rows.tolist()]
        todo = [i for i, k in enumerate(keys) if k not in self._stats]
        if todo:
            z = self.logits(rows[todo])
            if 1 < len(todo) <= SINGLE_MEMO:
                for j, i in enumerate(todo):
                    self._keep(keys[i], z[j : j + 1])
            for i, st in zip(todo, self.code_stats(z)):
                self._stats[keys[i]] = st
        return [self._stats[k] for k in keys]

    def _keep(self, key: tuple[float, ...], z: torch.Tensor) -> None:
        """Keep the logits ``z`` (1, n, C) of the single row ``key``."""
        if key not in self._single:
            if len(self._single) >= SINGLE_MEMO:
                self._single.pop(next(iter(self._single)))
            self._single[key] = z

    def scan(self, rows: torch.Tensor) -> Iterator[CodeStats]:
        """:class:`CodeStats` per row of ``rows`` (K, L), in order, computed in calls that
        double from ``FIRST_CHUNK`` candidates (a scan that stops early evaluates few)."""
        start, step = 0, min(FIRST_CHUNK, self.chunk or 1)
        while start < len(rows):
            yield from self.stats(rows[start : start + step])
            start, step = start + step, min(2 * step, self.chunk or 1)


def _cacheable_linears(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    eta: ParamDict,
    x: torch.Tensor,
) -> tuple[Cached, int]:
    """The ``nn.Linear`` layers with a moved tensor, called once, on an input that depends on
    no moved tensor (autograd tells): name -> (W a + b, E_W a or None, e_b or None); and the
    values one fast-route candidate holds (moved tensors not cached plus activations)."""
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    acts = [0]

    def hook(name: str):
        def record(mod: nn.Module, inputs: tuple, out: object) -> None:
            if isinstance(mod, nn.Linear) and isinstance(out, torch.Tensor):
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
    cached: Cached = {}
    with torch.no_grad():
        for name, calls in seen.items():
            w, b = _join(name, "weight"), _join(name, "bias")
            if len(calls) != 1 or calls[0][0].requires_grad or not ({w, b} & set(eta)):
                continue
            a, base = calls[0][0].detach(), calls[0][1].detach()  # base = W a + b, unperturbed
            e_w = nn.functional.linear(a, eta[w]) if w in eta else None
            cached[name] = (base, e_w, eta.get(b))
    moved_rest = sum(v.numel() for k, v in eta.items() if k.rpartition(".")[0] not in cached)
    return cached, moved_rest + acts[0]
