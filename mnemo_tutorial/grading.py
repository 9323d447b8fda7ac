"""Helpers for the assignments' hidden checks.

A hidden check must tell "wrote it" from "called the package": while a student's function
runs inside :func:`package_blocked`, every function of ``mnemo_tutorial`` (and any method named
in ``also``) is replaced by a stub that raises :class:`CalledThePackage`, wherever the student
could reach it: the package's modules and the student's own namespace. The check computes its
reference with the package before (or after) the block::

    ref = per_sample_sq_grads(m, x, y)
    with package_blocked(sq_grads_loop):
        got = sq_grads_loop(m, x, y)
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CalledThePackage", "package_blocked"]

PACKAGE = "mnemo_tutorial"
_INHERITED = object()  # marks a method found on a base class: removed again, not restored


class CalledThePackage(AssertionError):
    """A student's function called a package helper that the question asks them to write."""


def _is_package_function(obj: Any) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return inspect.isfunction(obj) and module.startswith(PACKAGE) and module != __name__


class _Gate:
    """Open while an allowed function runs: the package then works as usual inside it."""

    depth = 0


def _stub(who: str, name: str, original: Any, gate: type[_Gate]) -> Callable[..., Any]:
    def stub(*args: Any, **kwargs: Any) -> Any:
        if gate.depth:
            return original(*args, **kwargs)
        raise CalledThePackage(
            f"{who} called the package's {name}: this question asks you to write it yourself"
        )

    stub.__name__ = name.rsplit(".", 1)[-1]
    return stub


def _opener(original: Callable[..., Any], gate: type[_Gate]) -> Callable[..., Any]:
    def allowed(*args: Any, **kwargs: Any) -> Any:
        gate.depth += 1
        try:
            return original(*args, **kwargs)
        finally:
            gate.depth -= 1

    allowed.__name__ = original.__name__
    return allowed


def _resolve_method(spec: str) -> tuple[Any, str]:
    """``"module:Class.method"`` or ``"Class.method"`` (looked up in the package's modules)."""
    if ":" in spec:
        module_name, dotted = spec.split(":", 1)
        owner: Any = sys.modules[module_name]
    else:
        dotted = spec
        first = dotted.split(".", 1)[0]
        owner = next(
            (m for n, m in _package_modules() if isinstance(getattr(m, first, None), type)), None
        )
        if owner is None:
            raise ValueError(f"also: no loaded package module defines {first!r}")
    *path, attr = dotted.split(".")
    for part in path:
        owner = getattr(owner, part)
    if not hasattr(owner, attr):
        raise ValueError(f"also: {spec!r} names no attribute")
    return owner, attr


def _package_modules() -> list[tuple[str, Any]]:
    return [
        (name, module)
        for name, module in list(sys.modules.items())
        if module is not None and (name == PACKAGE or name.startswith(PACKAGE + "."))
    ]


def _load_lazy_exports() -> None:
    """Resolve the package's lazily exported names now, so that a lookup inside the block cannot
    cache a stub on the package (``mnemo_tutorial.__getattr__`` stores what it found)."""
    package = sys.modules.get(PACKAGE)
    for name in getattr(package, "__all__", ()):
        getattr(package, name)


@contextmanager
def package_blocked(
    fn: Callable[..., Any], also: Iterable[str] = (), allow: Iterable[str] = ()
) -> Iterator[None]:
    """Within the block, the package's functions raise :class:`CalledThePackage`.

    ``fn`` is the student's function (its module globals are patched too, so that names the
    notebook imported before the question are blocked as well); ``also`` names methods to block
    (``"MnemonicCodes.random"``); ``allow`` names functions the question may use (by their
    ``__name__``; the package works as usual while they run). This module's own helpers are
    never blocked.
    """
    if not callable(fn):
        raise TypeError(f"fn: expected the student's function, got {type(fn).__name__}")
    allowed = set(allow)
    who = getattr(fn, "__name__", "your function")
    saved: list[tuple[Any, str, Any, bool]] = []  # (owner, attribute, old value, was a dict)

    def patch(owner: Any, attr: str, value: Any, is_dict: bool) -> None:
        old = owner[attr] if is_dict else vars(owner).get(attr, _INHERITED)
        saved.append((owner, attr, old, is_dict))
        if is_dict:
            owner[attr] = value
        else:
            setattr(owner, attr, value)

    gate = type("Gate", (_Gate,), {})

    def replacement(obj: Any, name: str) -> Any:
        if obj.__name__ in allowed:
            return _opener(obj, gate)
        return _stub(who, name, obj, gate)

    _load_lazy_exports()
    try:
        for _, module in _package_modules():
            for attr, obj in list(vars(module).items()):
                if _is_package_function(obj) and not attr.startswith("__"):
                    patch(module, attr, replacement(obj, f"{obj.__module__}.{obj.__name__}"), False)
        namespace = getattr(fn, "__globals__", {})
        for attr, obj in list(namespace.items()):
            if _is_package_function(obj) and obj is not fn:
                patch(namespace, attr, replacement(obj, f"{obj.__module__}.{obj.__name__}"), True)
        for spec in also:
            owner, attr = _resolve_method(spec)
            patch(owner, attr, _stub(who, spec, getattr(owner, attr), gate), False)
        yield
    finally:
        for owner, attr, old, is_dict in reversed(saved):
            if is_dict:
                owner[attr] = old
            elif old is _INHERITED:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)
