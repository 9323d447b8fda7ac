"""mnemo_tutorial: the companion package of the one-shot unlearning tutorial.

One-shot machine unlearning with mnemonic codes (Yamashita, Yamada, Shibata, ACML 2024,
arXiv:2306.05670): codes, Fisher information, the forgetting step, the unlearning methods it
is compared with, metrics, data, models and the training loop used by every chapter of the book.

The names below are imported on first use (PEP 562), so that ``import mnemo_tutorial`` and
``python -m mnemo_tutorial --help`` do not load torch.
"""

from __future__ import annotations

import importlib


def _version() -> str:
    """The installed distribution's version; pyproject.toml's when run from a checkout that
    was never installed (its one source in either case)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnemo_tutorial")
    except PackageNotFoundError:
        import re
        from pathlib import Path

        project = Path(__file__).resolve().parent.parent / "pyproject.toml"
        text = project.read_text(encoding="utf-8") if project.is_file() else ""
        found = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.MULTILINE)
        return found.group(1) if found else "0+unknown"


__version__ = _version()

_EXPORTS = {
    "core.codes": ("CodeMixDataset", "MnemonicCodes"),
    "core.fisher": (
        "code_fisher",
        "fisher_by_class",
        "fisher_loop",
        "oracle_fisher",
        "per_sample_sq_grads",
    ),
    "core.settings": ("DataFree", "Fixed", "ForgetSettings", "Validation"),
    "core.step": ("head_params", "layer_steps", "sensitivity"),
    "core.forget": ("ForgetFailed", "ForgetReport", "ForgetResult", "forget"),
    "core.alignment": ("CodeAlignment", "CodesNotAligned", "ForgetRefused", "measure_alignment"),
    "core.rehearsal": ("Rehearsal", "RehearsalMissed", "rehearse"),
    "training.data": (
        "ChecksumError",
        "DataNotFoundError",
        "ImageData",
        "load_dataset",
        "load_mnist",
    ),
    "training.models": ("MLP", "make_model"),
    "training.profiles": ("Profile", "Settings", "TrainConfig", "get_profile", "get_settings"),
    "training.loop": ("TrainResult", "train_model"),
    "training.checkpoints": ("train_or_load",),
    "evaluation.metrics": (
        "confusion_matrix",
        "evaluate",
        "forget_metrics",
        "per_class_accuracy",
        "predict",
    ),
    "methods.registry": ("METHODS", "UnlearnTask", "get_method", "run_method"),
    "utils": ("get_device", "seed_everything"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mnemo_tutorial' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
