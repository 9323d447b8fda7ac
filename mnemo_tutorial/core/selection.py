"""How (lambda1, lambda2) and the sign of the step are chosen: one function per selection
object of :mod:`~mnemo_tutorial.core.settings`, all scoring candidates with a
:class:`~mnemo_tutorial.core.probe.CodeProbe`.

* :func:`select_data_free` (:class:`DataFree`): the smallest step on the grid that puts every
  forget code ``margin`` logits below the best remaining class, every remaining code kept;
* :func:`select_on_validation` (:class:`Validation`): the grid point and sign with the highest
  E_F + A_R on a held-out split;
* :func:`select_fixed` (:class:`Fixed`): given lambdas (or the paper's), the sign that scores
  higher on the codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mnemo_tutorial.core.fisher import ParamDict
from mnemo_tutorial.core.probe import CodeProbe, CodeStats, best_other_logit
from mnemo_tutorial.core.settings import DataFree, Fixed, ForgetSettings, Validation
from mnemo_tutorial.core.step import layer_steps, maxima

__all__ = [
    "SCREEN_REMAINING",
    "STEP_DIGITS",
    "Candidates",
    "Choice",
    "candidates",
    "select",
    "select_data_free",
    "select_fixed",
    "select_on_validation",
]

STEP_DIGITS = 12  # candidate steps equal to this many digits are the same candidate
# A screened candidate this close below the margin is checked on every code too (the screen's
# logits come from a smaller batch and may differ from the full probe's in the last bits).
SCREEN_SLACK = 1e-3


@dataclass
class Choice:
    """The selected (lambda1, lambda2), per-tensor steps and sign, whether the selection's
    criterion was met, and what the selection reports (``info``)."""

    lambda1: float
    lambda2: float
    steps: dict[str, float]
    sign: int
    criterion_met: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Candidates:
    """Distinct candidate steps on a (lambda1, lambda2) grid, smallest perturbation first:
    ``steps`` (K, L) float64 over the tensors ``names``, ``lambdas`` K pairs, ``norms``
    ||Delta||."""

    names: list[str]
    lambdas: list[tuple[float, float]]
    steps: torch.Tensor
    norms: list[float]

    def step_dict(self, i: int) -> dict[str, float]:
        return dict(zip(self.names, self.steps[i].tolist()))

    def choice(self, i: int, sign: int, met: bool, info: dict[str, Any]) -> Choice:
        return Choice(*self.lambdas[i], self.step_dict(i), sign, met, info)


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


def candidates(eta: ParamDict, grids: tuple[Sequence[float], Sequence[float]]) -> Candidates:
    """The grid's distinct per-tensor steps (equal to ``STEP_DIGITS`` decimals = one candidate),
    sorted by the perturbation norm, then lambda1, then lambda2."""
    names, top = list(eta), maxima(eta)
    sq_norms = [_sq_norm(eta[k], top[k]) for k in names]
    tops = [top[k] for k in names]
    seen: dict[tuple, tuple[float, float, float, list[float]]] = {}
    for l1 in grids[0]:
        for l2 in grids[1]:
            row = [l1 if m <= 0 else min(l1, l2 / m) for m in tops]  # steps_from_maxima
            key = tuple(round(v, STEP_DIGITS) for v in row)
            if key not in seen:
                norm = sum(a * a * q for a, q in zip(row, sq_norms)) ** 0.5
                seen[key] = (norm, l1, l2, row)
    ordered = sorted(seen.values(), key=lambda c: c[:3])
    steps = torch.tensor([c[3] for c in ordered], dtype=torch.float64).view(
        len(ordered), len(names)
    )
    return Candidates(names, [(c[1], c[2]) for c in ordered], steps, [c[0] for c in ordered])


def _order_signs(
    probe: CodeProbe, eta: ParamDict, signs: Sequence[int], paper: tuple[float, float]
) -> list[int]:
    """The paper's sign rule: first the sign whose model at the paper's lambdas scores higher
    on the codes (ties: the deeper forget-code margin)."""
    ref = layer_steps(eta, *paper)
    zero = torch.zeros(1, len(probe.names), dtype=torch.float64)
    # the unperturbed model in the same call: the screen and the report ask for it too
    stats = probe.stats(torch.cat([*(probe.row(ref, s) for s in signs), zero]))
    by_sign = dict(zip(signs, stats))
    return sorted(signs, key=lambda s: (-by_sign[s].score, -by_sign[s].forget_depth))


#: Remaining codes a data-free scan screens candidates on (beside the forget codes): the
#: remaining codes with the smallest margin to another class before the step. A candidate
#: that passes the screen is then checked on every code, so the choice is the one a scan of
#: every code makes, at a cost per candidate that no longer grows with the number of codes.
SCREEN_REMAINING = 32


def _screen(probe: CodeProbe, last_row: torch.Tensor) -> CodeProbe | None:
    """A probe of the forget codes and the :data:`SCREEN_REMAINING` remaining codes nearest to
    changing class (sharing ``probe``'s scratch model); None when that is nearly every code."""
    n_remain = int(probe.remain_idx.numel())
    if n_remain <= 2 * SCREEN_REMAINING:
        return None
    z = probe.logits(torch.zeros(1, len(probe.names), dtype=torch.float64))
    y = probe.y.to(z.device)[None]
    margin = (z.gather(2, y[..., None]).squeeze(2) - best_other_logit(z, y))[0]
    remain = probe.remain_idx.to(z.device)
    near = remain[margin.index_select(0, remain).argsort()[:SCREEN_REMAINING]]
    idx = torch.cat([probe.forget_idx.to(z.device), near]).to(probe.x.device)
    screen = probe.on(probe.x.index_select(0, idx), probe.y.index_select(0, idx.to(y.device)))
    screen.enable_fast(last_row)
    return screen


def select_data_free(
    probe: CodeProbe,
    eta: ParamDict,
    grid: Candidates,
    margin: float,
    signs: Sequence[int],
    paper: tuple[float, float],
) -> Choice:
    """The smallest perturbation on the grid after which every forget code is at least
    ``margin`` logits below the best remaining class while every remaining code keeps its
    class (codes only). Signs in the paper's order; the second is scanned only if the first
    finds nothing. Not met: the candidate that pushes the forget codes deepest while keeping
    every remaining code (or, if every candidate loses one, the paper's lambdas), with
    ``criterion_met`` False.

    With many codes, candidates are first screened on the forget codes and a few remaining
    ones (:data:`SCREEN_REMAINING`); a candidate is chosen only after it passes on every code.
    ``info``: ``candidates_evaluated`` (screened, plus the sign rule's two) and
    ``candidates_checked`` (evaluated on every code after passing the screen)."""
    order = _order_signs(probe, eta, signs, paper)
    screen = _screen(probe, grid.steps[-1])
    checked: set[tuple[int, int]] = set()

    def full(i: int, s: int) -> CodeStats:  # the probe keeps every row's stats
        checked.add((i, s))
        return probe.stats(s * grid.steps[i : i + 1])[0]

    evaluated, kept = len(signs), []
    for rank, s in enumerate(order):
        for i, st in enumerate((screen or probe).scan(s * grid.steps)):
            evaluated += 1
            if not st.remain_ok:
                continue
            kept.append((-st.forget_depth, rank, i, s))
            if screen is not None and st.forget_depth >= margin - SCREEN_SLACK:
                st = full(i, s)
            if st.remain_ok and st.forget_depth >= margin:
                met = {"candidates_evaluated": evaluated, "candidates_checked": len(checked)}
                return grid.choice(i, s, True, met)
    # the deepest candidate that keeps every remaining code (first in scan order on a tie)
    found = next((c for c in sorted(kept) if screen is None or full(c[2], c[3]).remain_ok), None)
    info: dict[str, Any] = {
        "candidates_evaluated": evaluated,
        "candidates_checked": len(checked),
        "fallback": "deepest" if found else "paper",
    }
    if found is not None:
        return grid.choice(found[2], found[3], False, info)
    return Choice(*paper, layer_steps(eta, *paper), order[0], False, info)


def select_on_validation(
    probe: CodeProbe, held_out: CodeProbe, grid: Candidates, signs: Sequence[int]
) -> Choice:
    """The grid point and sign maximising E_F + A_R on the held-out samples of ``held_out``
    (ties: the smaller perturbation). Criterion, on the codes (``probe``): no forget code
    keeps its class and every remaining code does."""
    best: tuple[tuple[float, float], int, int] | None = None
    for s in signs:
        for i, st in enumerate(held_out.scan(s * grid.steps)):
            key = (st.score, -grid.norms[i])
            if best is None or key > best[0]:
                best = (key, i, s)
    assert best is not None  # the grid is never empty
    (score, _), i, s = best
    met = probe.stats(s * grid.steps[i : i + 1])[0].clean
    info = {"validation_score": score, "validation_size": int(held_out.y.numel())}
    return grid.choice(i, s, met, info)


def select_fixed(
    probe: CodeProbe, eta: ParamDict, lambdas: tuple[float, float], signs: Sequence[int]
) -> Choice:
    """The given (lambda1, lambda2) and the sign that scores higher on the codes (ties: the
    first of ``signs``). Criterion: on the codes, no forget code keeps its class and every
    remaining code does."""
    steps = layer_steps(eta, *lambdas)
    stats = probe.stats(torch.cat([probe.row(steps, s) for s in signs]))
    best = max(range(len(signs)), key=lambda j: (stats[j].score, -j))
    return Choice(lambdas[0], lambdas[1], steps, signs[best], stats[best].clean)


def select(settings: ForgetSettings, probe: CodeProbe, eta: ParamDict) -> tuple[Choice, str]:
    """Run ``settings.selection`` with the codes' ``probe``. -> (choice, probe route)."""
    grid = candidates(eta, settings.grids)
    route = probe.enable_fast(grid.steps[-1])
    sel, signs = settings.selection, settings.signs
    if isinstance(sel, DataFree):
        choice = select_data_free(probe, eta, grid, sel.margin, signs, settings.paper_lambdas)
    elif isinstance(sel, Validation):
        device = probe.y.device
        held_out = probe.on(torch.as_tensor(sel.x).to(device), torch.as_tensor(sel.y).to(device))
        held_out.enable_fast(grid.steps[-1])
        choice = select_on_validation(probe, held_out, grid, signs)
    else:
        assert isinstance(sel, Fixed)
        choice = select_fixed(probe, eta, sel.lambdas(settings.paper_lambdas), signs)
    choice.info["probe"] = route
    return choice, route
