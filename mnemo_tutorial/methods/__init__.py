"""Every unlearning method behind one interface: the registry (:mod:`.registry`) and one module
per method, each run as its authors run it (:mod:`.retrain`, :mod:`.finetune`, :mod:`.neggrad`,
:mod:`.ssd`, :mod:`.fisher_forgetting`, :mod:`.unsir`; what they share: :mod:`.common`). The
one-shot method itself is :func:`mnemo_tutorial.core.forget.forget`."""

from mnemo_tutorial.methods.registry import (
    METHODS,
    NEEDS,
    Method,
    UnlearnTask,
    get_method,
    parse_methods,
    register_method,
    run_method,
)

__all__ = [
    "METHODS",
    "NEEDS",
    "Method",
    "UnlearnTask",
    "get_method",
    "parse_methods",
    "register_method",
    "run_method",
]
