"""Argument checks shared by the package (torch-free): one-line errors that name the
argument and what is allowed, raised before any slow work starts."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "check_choice",
    "check_forget_classes",
    "check_positive",
]


def check_forget_classes(
    classes: Sequence[int] | int, num_classes: int, name: str = "forget"
) -> list[int]:
    """Validate a forget set: integers in [0, num_classes), no duplicates, not empty, not all
    classes.

    Returns the classes as a list of ``int``; ``name`` is the argument named in the error.
    """
    if isinstance(classes, bool):  # an int, but not a class index
        raise ValueError(f"{name} must be class indices in 0..{num_classes - 1}; got {classes!r}")
    if isinstance(classes, int):
        classes = [classes]
    try:
        out = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be class indices in 0..{num_classes - 1}; got {classes!r}"
        ) from None
    if not out:
        raise ValueError(
            f"{name} must name at least one class in 0..{num_classes - 1}; got an empty set"
        )
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"{name} must be class indices in 0..{num_classes - 1}; got {bad[0]}")
    if len(set(out)) != len(out):
        dup = next(c for c in out if out.count(c) > 1)
        raise ValueError(f"{name} must not repeat a class; {dup} appears twice")
    if len(out) >= num_classes:
        raise ValueError(
            f"{name} must leave at least one of the {num_classes} classes; got all of them"
        )
    return out


def check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    """``value`` as a float if it is > 0 (>= 0 with ``allow_zero``), else a one-line error
    naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    ok = v >= 0 if allow_zero else v > 0
    if not ok or v != v:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}; got {value!r}")
    return v


def check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    """A one-line error naming ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
