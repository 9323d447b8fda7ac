"""How :func:`~mnemo_tutorial.core.forget.forget` is configured (torch-free, immutable).

Configuration is kept apart from the inputs, as scikit-learn's estimators and Opacus's
``make_private`` do: a :class:`ForgetSettings` says which tensors move, how the step size and
sign are chosen (a selection object: :class:`DataFree`, :class:`Validation` or :class:`Fixed`)
and in which precision the Fisher is computed; ``forget(model, codes, classes, settings)``
does the work.

Defaults that differ from the paper (Yamashita et al., ACML 2024, Sec. 4 and the authors'
code): the step size is chosen per model by :class:`DataFree` on the codes (the paper fixes
(lambda1, lambda2) per data set: ``Fixed()`` reproduces that); each code's squared gradient is
normalised by its total (``normalize_fisher=True``; the paper does not normalise); the sign is
the one that scores higher on the codes (the authors keep + only when it scores strictly
higher); the Fisher is computed in float32 whatever the model's precision.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mnemo_tutorial.checks import check_choice, check_positive

__all__ = [
    "DEFAULT_MARGIN",
    "FISHER_DTYPES",
    "LAMBDA1_GRID",
    "LAMBDA2_GRID",
    "NAMED_PARAMS",
    "ON_FAILURE",
    "PAPER_LAMBDAS",
    "DataFree",
    "Fixed",
    "ForgetSettings",
    "Selection",
    "Validation",
]

DEFAULT_MARGIN = 8.0  # logits by which every forget code must fall below the best remaining class
PAPER_LAMBDAS = (1e-3, 10.0)  # the paper's MNIST (lambda1, lambda2)
FISHER_DTYPES = ("float32", "float64")
ON_FAILURE = ("raise", "warn", "return")
# The paper's grid (lambda1 in 1e-6..1, lambda2 in 1e-1..1e5), in half-decade steps.
LAMBDA1_GRID: tuple[float, ...] = tuple(10.0 ** (e / 2) for e in range(-12, 1))
LAMBDA2_GRID: tuple[float, ...] = tuple(10.0 ** (e / 2) for e in range(-2, 11))


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a (lambda1, lambda2) pair of positive numbers; got {value!r}"
        ) from None
    if not (a > 0 and b > 0):
        raise ValueError(f"{name} must be positive; got {value!r}")
    return a, b


@dataclass(frozen=True)
class DataFree:
    """Codes only: the smallest step on the grid after which every forget code is ``margin``
    logits below the best remaining class while every remaining code keeps its class."""

    margin: float = DEFAULT_MARGIN
    name = "data-free"

    def __post_init__(self) -> None:
        object.__setattr__(self, "margin", check_positive("margin", self.margin, allow_zero=True))

    @property
    def criterion(self) -> str:
        return (
            f"every forget code >= {self.margin:g} logits below the best remaining class, "
            "every remaining code kept"
        )


@dataclass(frozen=True)
class Fixed:
    """Given (lambda1, lambda2); both None: the settings' ``paper_lambdas``. Criterion: no
    forget code keeps its class and every remaining code does."""

    lambda1: float | None = None
    lambda2: float | None = None
    name = "fixed"
    criterion = "no forget code keeps its class, every remaining code kept"

    def __post_init__(self) -> None:
        if (self.lambda1 is None) != (self.lambda2 is None):
            raise ValueError("Fixed needs both lambda1 and lambda2, or neither (the paper's)")
        if self.lambda1 is not None:
            a, b = _pair("Fixed(lambda1, lambda2)", (self.lambda1, self.lambda2))
            object.__setattr__(self, "lambda1", a)
            object.__setattr__(self, "lambda2", b)

    def lambdas(self, paper: tuple[float, float]) -> tuple[float, float]:
        if self.lambda1 is None or self.lambda2 is None:
            return paper
        return (self.lambda1, self.lambda2)


def _length(t: Any) -> int:
    """Number of samples of ``t`` (-1 for something without a first dimension)."""
    try:
        return len(t)
    except TypeError:
        return -1


@dataclass(frozen=True, eq=False)
class Validation:
    """The grid point and sign with the highest E_F + A_R on held-out ``(x, y)`` carved from the
    training data (never the test split). Criterion, on the codes: no forget code keeps its
    class and every remaining code does."""

    x: Any
    y: Any
    name = "validation"
    criterion = "no forget code keeps its class, every remaining code kept"

    def __post_init__(self) -> None:
        n_x, n_y = (_length(t) for t in (self.x, self.y))
        if n_y <= 0 or n_x != n_y:
            raise ValueError(
                "Validation(x, y) must hold at least one sample with as many labels "
                f"as inputs; got {n_x} inputs, {n_y} labels"
            )


Selection = DataFree | Fixed | Validation


def _grids(value: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    message = (
        "grids must be two non-empty sequences of positive numbers (lambda1s, lambda2s); "
        f"got {value!r}"
    )
    try:
        out = tuple(tuple(float(v) for v in g) for g in value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if len(out) != 2 or not all(out) or not all(v > 0 for g in out for v in g):
        raise ValueError(message)
    return out[0], out[1]


#: The named choices of tensors to move (resolved against a model by
#: :func:`~mnemo_tutorial.core.step.resolve_params`); ``"auto"`` is resolved from the codes first.
NAMED_PARAMS = ("all", "head", "head-bias")
_PARAMS_ALLOWED = (
    "params must be 'auto', 'all', 'head', 'head-bias' or a non-empty sequence of tensor names"
)


def _params(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        if value == "auto" or value in NAMED_PARAMS:
            return value
        raise ValueError(f"{_PARAMS_ALLOWED}; got {value!r}")
    try:
        names = tuple(value)
    except TypeError:
        raise ValueError(f"{_PARAMS_ALLOWED}; got {value!r}") from None
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{_PARAMS_ALLOWED}; got {value!r}")
    return names


@dataclass(frozen=True)
class ForgetSettings:
    """How the one-shot step is applied (immutable; ``replace`` makes a changed copy).

    * ``selection``: :class:`DataFree` (default), :class:`Validation` or :class:`Fixed`;
    * ``params``: the tensors the step moves and whose Fisher is computed: ``"auto"`` (the
      default: the tensors the codes' training-time rehearsal chose of ``"head"`` and
      ``"all"``, :mod:`~mnemo_tutorial.core.rehearsal`, and ``"all"`` for codes without one),
      ``"all"``,
      ``"head"`` (the output layer, :func:`~mnemo_tutorial.core.step.head_params`),
      ``"head-bias"`` (the output layer's bias alone: the step's effect on a logit is then the
      same for every input, an output-bias edit, never the default) or tensor names;
    * ``paper_lambdas``: the paper's (lambda1, lambda2), used by ``Fixed()`` and as the
      reference of the sign rule;
    * ``sign``: None (the sign that scores higher on the codes), 1 or -1;
    * ``normalize_fisher``: divide each code's squared gradient by its total over ``params``;
    * ``fisher_dtype``: "float32" or "float64", the precision of Fisher, ratio and step;
    * ``grids``: the (lambda1s, lambda2s) grid scanned by data-free and validation selection.
    """

    selection: Selection = DataFree()
    params: str | tuple[str, ...] = "auto"
    paper_lambdas: tuple[float, float] = PAPER_LAMBDAS
    sign: int | None = None
    normalize_fisher: bool = True
    fisher_dtype: str = "float32"
    grids: tuple[tuple[float, ...], tuple[float, ...]] = (LAMBDA1_GRID, LAMBDA2_GRID)

    def __post_init__(self) -> None:
        if not isinstance(self.selection, (DataFree, Fixed, Validation)):
            raise ValueError(
                "selection must be DataFree(margin=...), Validation(x, y) or "
                f"Fixed(lambda1, lambda2); got {self.selection!r}"
            )
        object.__setattr__(self, "params", _params(self.params))
        object.__setattr__(self, "paper_lambdas", _pair("paper_lambdas", self.paper_lambdas))
        if self.sign is not None and (type(self.sign) is not int or self.sign not in (1, -1)):
            raise ValueError(f"sign must be None (chosen), 1 or -1; got {self.sign!r}")
        if not isinstance(self.normalize_fisher, bool):
            raise ValueError(
                f"normalize_fisher must be True or False; got {self.normalize_fisher!r}"
            )
        check_choice("fisher_dtype", self.fisher_dtype, FISHER_DTYPES)
        object.__setattr__(self, "grids", _grids(self.grids))

    def replace(self, **changes: Any) -> ForgetSettings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    @property
    def signs(self) -> tuple[int, ...]:
        return (1, -1) if self.sign is None else (int(self.sign),)

    def describe(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (the grids summarised by their ends and sizes)."""
        sel: dict[str, Any] = {"name": self.selection.name}
        if isinstance(self.selection, DataFree):
            sel["margin"] = self.selection.margin
        elif isinstance(self.selection, Fixed):
            sel["lambdas"] = list(self.selection.lambdas(self.paper_lambdas))
            sel["lambdas_source"] = "paper" if self.selection.lambda1 is None else "given"
        else:
            sel["samples"] = len(self.selection.y)
        g1, g2 = self.grids
        return {
            "selection": sel,
            "params": self.params if isinstance(self.params, str) else list(self.params),
            "paper_lambdas": list(self.paper_lambdas),
            "sign": self.sign,
            "normalize_fisher": self.normalize_fisher,
            "fisher_dtype": self.fisher_dtype,
            "grids": {
                "lambda1": [min(g1), max(g1), len(g1)],
                "lambda2": [min(g2), max(g2), len(g2)],
            },
        }
