"""One-shot forgetting with mnemonic codes (Yamashita et al., ACML 2024)."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .codes import MnemonicCodes
from .fisher import ParamDict, group_means, grouped_fisher, per_sample_sq_grads
from .models import MLP

EPS = 1e-16


def sensitivity(f_forget: ParamDict, f_remain: ParamDict, eps: float = EPS) -> ParamDict:
    """eta_i = f_F,i / (f_R,i + eps), NaN -> 0 and +inf -> the largest finite float."""
    out = {}
    for k in f_forget:
        eta = f_forget[k] / (f_remain[k] + eps)
        out[k] = torch.nan_to_num(eta, nan=0.0, posinf=torch.finfo(eta.dtype).max)
    return out


def layer_steps(eta: ParamDict, lambda1: float, lambda2: float) -> dict[str, float]:
    """Per-tensor step alpha_l = min(lambda1, lambda2 / max_{i in l} eta_i)."""
    steps = {}
    for k, v in eta.items():
        m = float(v.max()) if v.numel() else 0.0
        steps[k] = lambda1 if m <= 0 else min(lambda1, lambda2 / m)
    return steps


@dataclass
class ForgetReport:
    """What a forgetting method did. ``seconds`` is the wall clock of the forgetting only."""

    method: str
    forget: list[int]
    seconds: float
    lambda1: float | None = None
    lambda2: float | None = None
    sign: int | None = None
    steps: dict[str, float] = field(default_factory=dict)
    selection: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "forget": list(self.forget),
            "seconds": self.seconds,
            "lambda1": self.lambda1,
            "lambda2": self.lambda2,
            "sign": self.sign,
            "steps": dict(self.steps),
            "selection": self.selection,
            "details": dict(self.details),
        }


@dataclass
class ForgetResult:
    """A new model (the input model is left as it was) and the report."""

    model: nn.Module
    report: ForgetReport


def check_forget_classes(forget: Sequence[int] | int, num_classes: int) -> list[int]:
    """Validate a forget set: integers in [0, num_classes), no duplicates, not empty, not all classes."""
    if isinstance(forget, (int,)) and not isinstance(forget, bool):
        forget = [forget]
    try:
        classes = [int(c) for c in forget]
    except (TypeError, ValueError):
        raise ValueError(f"forget must be class indices in 0..{num_classes - 1}; got {forget!r}") from None
    if not classes:
        raise ValueError(f"forget must name at least one class in 0..{num_classes - 1}; got an empty set")
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"forget must be class indices in 0..{num_classes - 1}; got {bad[0]}")
    if len(set(classes)) != len(classes):
        dup = next(c for c in classes if classes.count(c) > 1)
        raise ValueError(f"forget must not repeat a class; {dup} appears twice")
    if len(set(classes)) >= num_classes:
        raise ValueError(f"forget must leave at least one of the {num_classes} classes; got all of them")
    return classes


# The paper's grid (lambda1 in 1e-6..1, lambda2 in 1e-1..1e5), in half-decade steps.
LAMBDA1_GRID: tuple[float, ...] = tuple(10.0 ** (e / 2) for e in range(-12, 1))
LAMBDA2_GRID: tuple[float, ...] = tuple(10.0 ** (e / 2) for e in range(-2, 11))
SELECTIONS = ("data-free", "validation", "paper", "fixed")


def perturbation(eta: ParamDict, steps: dict[str, float], sign: int) -> ParamDict:
    """Delta w_i = sign * alpha_l * eta_i for every tensor l."""
    return {k: sign * steps[k] * v for k, v in eta.items()}


class _CodeProbe:
    """Evaluates perturbed copies of a model on the codes (or a validation set) without
    building new modules: ``torch.func.functional_call`` with the perturbed tensors."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, forget: list[int], num_classes: int):
        self.model = model
        self.params = {k: v.detach() for k, v in model.named_parameters()}
        self.buffers = {k: v.detach() for k, v in model.named_buffers()}
        self.x, self.y = x, y
        fmask = torch.zeros(num_classes, dtype=torch.bool, device=y.device)
        fmask[forget] = True
        self.is_forget = fmask[y]
        self.remain_classes = ~fmask
        self._mlp_cache: tuple | None = None

    @torch.no_grad()
    def logits(self, steps: dict[str, float] | None, eta: ParamDict | None = None, sign: int = 1) -> torch.Tensor:
        """Logits of the model perturbed by ``sign * steps[l] * eta[l]`` (unperturbed for None)."""
        if steps is None or eta is None:
            return torch.func.functional_call(self.model, (self.params, self.buffers), (self.x,))
        if isinstance(self.model, MLP):
            return self._mlp_logits(steps, eta, sign)
        params = {k: torch.add(v, eta[k], alpha=sign * steps[k]) for k, v in self.params.items()}
        return torch.func.functional_call(self.model, (params, self.buffers), (self.x,))

    def _mlp_logits(self, steps: dict[str, float], eta: ParamDict, sign: int) -> torch.Tensor:
        """The same logits for the paper's MLP without materialising the perturbed first layer:
        (W1 + a E1) x = W1 x + a (E1 x), with W1 x and E1 x computed once per probe and eta."""
        if self._mlp_cache is None or self._mlp_cache[0] is not eta:
            flat = self.x.flatten(1)
            base = flat @ self.params["fc1.weight"].T + self.params["fc1.bias"]
            self._mlp_cache = (eta, base, flat @ eta["fc1.weight"].T)
        _, base, e1x = self._mlp_cache
        pre = base + (sign * steps["fc1.weight"]) * e1x + (sign * steps["fc1.bias"]) * eta["fc1.bias"]
        w2 = torch.add(self.params["fc2.weight"], eta["fc2.weight"], alpha=sign * steps["fc2.weight"])
        b2 = torch.add(self.params["fc2.bias"], eta["fc2.bias"], alpha=sign * steps["fc2.bias"])
        return torch.sigmoid(pre) @ w2.T + b2

    def code_stats(self, steps: dict[str, float] | None, eta: ParamDict | None = None, sign: int = 1) -> tuple[float, bool, float]:
        """(largest forget-code margin against the remaining classes, all remaining codes
        correct?, code score = forget-code error + remaining-code accuracy)."""
        z = self.logits(steps, eta, sign)
        own = z.gather(1, self.y[:, None]).squeeze(1)
        best_remaining = z[:, self.remain_classes].max(1).values
        forget_margin = float((own - best_remaining)[self.is_forget].max())
        correct = (z.argmax(1) == self.y).tolist()
        is_forget = self.is_forget.tolist()
        remain_hits = [c for c, f in zip(correct, is_forget) if not f]
        forget_hits = [c for c, f in zip(correct, is_forget) if f]
        score = 1.0 - sum(forget_hits) / len(forget_hits) + sum(remain_hits) / len(remain_hits)
        return forget_margin, all(remain_hits), score

    def accuracy_score(self, steps: dict[str, float] | None, eta: ParamDict | None = None, sign: int = 1) -> float:
        """E_F + A_R (in [0, 2]) of the perturbed model on (x, y)."""
        pred = self.logits(steps, eta, sign).argmax(1)
        correct = pred == self.y
        return float(1 - correct[self.is_forget].float().mean()) + float(correct[~self.is_forget].float().mean())


def _candidates(eta: ParamDict, grid1: Sequence[float], grid2: Sequence[float]) -> list[tuple[float, float, dict[str, float], float]]:
    """Distinct (lambda1, lambda2, steps, ||Delta||) on the grid, smallest perturbation first."""
    maxima = {k: (float(v.max()) if v.numel() else 0.0) for k, v in eta.items()}
    sq_norms = {k: float(v.double().square().sum()) for k, v in eta.items()}
    seen: dict[tuple, tuple[float, float, dict[str, float], float]] = {}
    for l1 in grid1:
        for l2 in grid2:
            steps = {k: (l1 if m <= 0 else min(l1, l2 / m)) for k, m in maxima.items()}
            key = tuple(round(s, 12) for s in steps.values())
            if key in seen:
                continue
            norm = sum(steps[k] ** 2 * sq_norms[k] for k in eta) ** 0.5
            seen[key] = (l1, l2, steps, norm)
    return sorted(seen.values(), key=lambda c: (c[3], c[0], c[1]))


def _first_sufficient(
    probe: "_CodeProbe", eta: ParamDict, cands: list, sign: int, margin: float
) -> tuple[int | None, int, tuple[float, int] | None]:
    """Scan candidates from the smallest perturbation up for the first one after which every
    forget code sits ``margin`` logits below the best remaining class while every remaining
    code keeps its class.

    Returns (its index or None, number of candidates evaluated, (deepest forget-code margin,
    index) over the candidates that keep every remaining code, or None).
    """
    fallback: tuple[float, int] | None = None
    for i, (_, _, steps, _) in enumerate(cands):
        worst, remain_ok, _ = probe.code_stats(steps, eta, sign)
        if remain_ok and (fallback is None or worst < fallback[0]):
            fallback = (worst, i)
        if remain_ok and worst <= -margin:
            return i, i + 1, fallback
    return None, len(cands), fallback


def forget(
    model: nn.Module,
    codes: MnemonicCodes | torch.Tensor,
    forget: Sequence[int] | int,
    *,
    lambdas: str | tuple[float, float] = "auto",
    sign: str | int = "auto",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    margin: float = 8.0,
    paper_lambdas: tuple[float, float] = (1e-3, 10.0),
    normalize_fisher: bool = True,
    fisher_dtype: torch.dtype | None = None,
    lambda1_grid: Sequence[float] = LAMBDA1_GRID,
    lambda2_grid: Sequence[float] = LAMBDA2_GRID,
    params: Sequence[str] | None = None,
) -> ForgetResult:
    """One-shot forgetting of the classes ``forget`` with the mnemonic codes (C, *input_shape).

    1. Per-class Fisher from the codes (one forward/backward per class, vectorised);
       ``f_F`` = mean over the forgotten classes, ``f_R`` = mean over the others.
    2. eta = f_F / (f_R + 1e-16); per-tensor step alpha_l = min(lambda1, lambda2 / max eta_l).
    3. w <- w + sign * alpha_l * eta.

    ``lambdas``:
      * ``"auto"`` without ``validation`` (the default, data-free): on the paper's grid, the
        smallest perturbation after which every forgotten class's code scores at least
        ``margin`` logits below the best remaining class while every remaining code keeps
        its class. Only the codes are used.
      * ``"auto"`` with ``validation=(x, y)``: the grid point maximising E_F + A_R on that
        split (carve it from the training data, never from the test set).
      * ``"paper"``: ``paper_lambdas``; a ``(lambda1, lambda2)`` tuple: those values.
    ``sign``: ``"auto"`` keeps the sign whose model scores higher on the codes, or +1 / -1.
    ``params``: names of the parameter tensors the step may move (default: all, as in the
    paper); the others keep their values.

    Returns a new model (the input model is not modified, its train/eval mode is restored and
    no gradients are left on it) and a :class:`ForgetReport`.
    """
    t0 = time.perf_counter()
    code_tensor = codes.codes if isinstance(codes, MnemonicCodes) else codes
    num_classes = int(code_tensor.shape[0])
    classes = check_forget_classes(forget, num_classes)
    if sign not in ("auto", 1, -1):
        raise ValueError(f"sign must be 'auto', 1 or -1; got {sign!r}")
    if isinstance(lambdas, str):
        if lambdas not in ("auto", "paper"):
            raise ValueError(f"lambdas must be 'auto', 'paper' or a (lambda1, lambda2) pair; got {lambdas!r}")
    else:
        try:
            l1, l2 = (float(v) for v in lambdas)
        except (TypeError, ValueError):
            raise ValueError(f"lambdas must be 'auto', 'paper' or a (lambda1, lambda2) pair; got {lambdas!r}") from None
        if not (l1 > 0 and l2 > 0):
            raise ValueError(f"lambdas must be positive; got {lambdas!r}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0; got {margin!r}")

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        code_tensor = code_tensor.to(device)
        remain = [c for c in range(num_classes) if c not in classes]
        details: dict = {"normalize_fisher": normalize_fisher, "margin": margin}
        labels = torch.arange(num_classes, device=device)
        if fisher_dtype is None:
            weights = torch.zeros(2, num_classes, device=device)
            weights[0, classes] = 1.0 / len(classes)
            weights[1, remain] = 1.0 / len(remain)
            f_forget, f_remain = grouped_fisher(model, code_tensor, labels, weights, normalize=normalize_fisher)
        else:  # another precision: the torch.func per-sample route
            sq = per_sample_sq_grads(model, code_tensor, labels, dtype=fisher_dtype)
            f_forget, f_remain = group_means(sq, [classes, remain], normalize=normalize_fisher)
            del sq
        eta = sensitivity(f_forget, f_remain)
        if params is not None:
            unknown = sorted(set(params) - set(eta))
            if unknown or not params:
                raise ValueError(f"params must name parameter tensors of the model ({', '.join(eta)}); got {list(params)!r}")
            eta = {k: (v if k in params else torch.zeros_like(v)) for k, v in eta.items()}
            details["params"] = list(params)
        dtype = next(model.parameters()).dtype
        eta = {k: v.to(dtype) for k, v in eta.items()}
        probe = _CodeProbe(model, code_tensor, torch.arange(num_classes, device=device), classes, num_classes)
        signs = (1, -1) if sign == "auto" else (int(sign),)

        if lambdas == "auto" and validation is None:
            selection = "data-free"
            cands = _candidates(eta, lambda1_grid, lambda2_grid)
            # Sign as in the paper (code score at the paper's lambdas); the other sign is
            # scanned only when the first finds no grid point meeting the criterion.
            ref = layer_steps(eta, *paper_lambdas)
            ref_stats = {s: probe.code_stats(ref, eta, s) for s in signs}
            order = sorted(signs, key=lambda s: (-ref_stats[s][2], ref_stats[s][0]))
            found, fallbacks, evaluated = None, [], len(signs)
            for s in order:
                idx, n, fb = _first_sufficient(probe, eta, cands, s, margin)
                evaluated += n
                if idx is not None:
                    found = (idx, s)
                    break
                if fb is not None:
                    fallbacks.append((fb[0], fb[1], s))
            details["criterion_met"] = found is not None
            details["candidates_evaluated"] = evaluated
            if found is None and fallbacks:
                # nothing meets the margin: the grid point that pushes the forget codes
                # furthest while every remaining code keeps its class
                worst, idx, s = min(fallbacks)
                found = (idx, s)
                details["forget_code_margin"] = worst
            if found is not None:
                idx, chosen_sign = found
                lam1, lam2, steps, _ = cands[idx]
            else:  # every grid point breaks a remaining code: the paper's values
                lam1, lam2 = paper_lambdas
                steps = layer_steps(eta, lam1, lam2)
                chosen_sign = order[0]
        elif lambdas == "auto":
            selection = "validation"
            xv, yv = validation
            if len(yv) == 0:
                raise ValueError("validation must hold at least one sample")
            vprobe = _CodeProbe(model, xv.to(device), yv.to(device), classes, num_classes)
            best_key, chosen = None, None
            for l1, l2, steps, norm in _candidates(eta, lambda1_grid, lambda2_grid):
                for s in signs:
                    key = (vprobe.accuracy_score(steps, eta, s), -norm)
                    if best_key is None or key > best_key:
                        best_key, chosen = key, (l1, l2, steps, s)
            details["validation_score"] = best_key[0] if best_key else None
            details["validation_size"] = int(len(yv))
            lam1, lam2, steps, chosen_sign = chosen  # type: ignore[misc]
        else:
            selection = "paper" if lambdas == "paper" else "fixed"
            lam1, lam2 = paper_lambdas if lambdas == "paper" else (float(lambdas[0]), float(lambdas[1]))
            steps = layer_steps(eta, lam1, lam2)
            chosen_sign = max(signs, key=lambda s: probe.code_stats(steps, eta, s)[2])

        delta = perturbation(eta, steps, chosen_sign)
        new_model = copy.deepcopy(model)
        with torch.no_grad():
            for name, p in new_model.named_parameters():
                p.add_(delta[name].to(p.dtype))
                p.grad = None
    finally:
        model.train(was_training)
    new_model.train(was_training)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    report = ForgetReport(
        method="mnemonic",
        forget=classes,
        seconds=seconds,
        lambda1=float(lam1),
        lambda2=float(lam2),
        sign=int(chosen_sign),
        steps={k: float(v) for k, v in steps.items()},
        selection=selection,
        details=details,
    )
    return ForgetResult(model=new_model, report=report)
