"""The environment, read in one place: device, profile name, mixed precision.

Library functions take explicit arguments; the command line and the chapters' setup cells
call these helpers to turn ``MNEMO_DEVICE`` / ``MNEMO_PROFILE`` into those arguments.

* ``MNEMO_DEVICE``: ``cpu``, ``cuda`` or ``auto`` (the default: CUDA when available).
* ``MNEMO_PROFILE``: a profile name (default ``quick``, whatever the device: the chapters'
  pretrained models are ``quick`` models, and ``standard`` is asked for explicitly).
* ``MNEMO_RETRAIN``: ``1``/``true``/``yes`` trains from scratch instead of loading a cached or
  shipped model (default: load).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

__all__ = [
    "DEFAULT_PROFILE",
    "DEVICE_CHOICES",
    "RETRAIN_FALSE",
    "RETRAIN_TRUE",
    "chapter_seed",
    "check_device_name",
    "cpu_model",
    "device_description",
    "machine_description",
    "package_source_hash",
    "Precision",
    "profile_name",
    "retrain_requested",
    "select_device",
    "training_precision",
]

if TYPE_CHECKING:  # annotations only: this module is read before torch may be imported
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEFAULT_PROFILE = "quick"


def select_device(value: str | None = None):
    """The torch device named by ``value`` (or ``MNEMO_DEVICE``): ``cpu``, ``cuda`` or ``auto``.

    ``auto`` (the default) is CUDA when available, else the CPU. Asking for ``cuda`` where
    there is none is an error that says so.
    """
    import torch

    source = "device" if value is not None else "MNEMO_DEVICE"
    raw = value if value is not None else os.environ.get("MNEMO_DEVICE", "auto")
    name = str(raw).strip().lower() or "auto"
    if name not in DEVICE_CHOICES:
        raise ValueError(f"{source} must be one of {', '.join(DEVICE_CHOICES)}; got {raw!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source} is 'cuda' but no CUDA device is available; use cpu or auto")
    return torch.device(name)


def check_device_name(value: str) -> str:
    """Validate a device name without importing torch (for the command line)."""
    name = str(value).strip().lower()
    if name not in DEVICE_CHOICES:
        raise ValueError(f"must be one of {', '.join(DEVICE_CHOICES)}; got {value!r}")
    return name


def profile_name(value: str | None = None) -> str:
    """``value``, else ``MNEMO_PROFILE``, else ``quick``."""
    name = value or os.environ.get("MNEMO_PROFILE") or DEFAULT_PROFILE
    return str(name).strip()


RETRAIN_TRUE = ("1", "true", "yes")
RETRAIN_FALSE = ("", "0", "false", "no")


def retrain_requested(value: str | None = None) -> bool:
    """``value`` (or ``MNEMO_RETRAIN``) as a flag: ``1``/``true``/``yes`` -> True,
    unset/empty/``0``/``false``/``no`` -> False (case-insensitive); anything else is an error."""
    source = "retrain" if value is not None else "MNEMO_RETRAIN"
    raw = value if value is not None else os.environ.get("MNEMO_RETRAIN", "")
    flag = str(raw).strip().lower()
    if flag in RETRAIN_TRUE:
        return True
    if flag in RETRAIN_FALSE:
        return False
    allowed = ", ".join(repr(v) for v in RETRAIN_TRUE + RETRAIN_FALSE[1:])
    raise ValueError(f"{source} must be one of {allowed} (or empty); got {raw!r}")


def chapter_seed(value: str | None = None) -> int:
    """The training seed the chapters use: ``value`` (or ``MNEMO_SEED``), a non-negative
    integer; 0 when unset or empty (the seed of the shipped models). Another seed trains its
    own models (and their codes) on first use; anything else is an error."""
    raw = value if value is not None else os.environ.get("MNEMO_SEED", "")
    text = str(raw).strip()
    if not text:
        return 0
    if not text.isdigit():
        source = "seed" if value is not None else "MNEMO_SEED"
        raise ValueError(f"{source} must be a non-negative integer; got {raw!r}")
    return int(text)


@dataclass(frozen=True)
class Precision:
    """How training runs on a device: autocast dtype (None: float32) and whether a
    ``torch.amp.GradScaler`` is needed (float16 only)."""

    name: str  # "float32", "bfloat16" or "float16"
    autocast_dtype: torch.dtype | None
    grad_scaler: bool


def training_precision(device_type: str, capability: tuple[int, int] | None = None) -> Precision:
    """Mixed precision by capability.

    * CPU (or anything but CUDA): float32.
    * CUDA with compute capability >= 8.0 (Ampere and newer; native bfloat16): bfloat16 autocast.
    * Older CUDA GPUs (e.g. Colab's T4, 7.5): float16 autocast with a gradient scaler.

    ``capability`` defaults to the current CUDA device's; pass it to decide for another GPU.
    The Fisher information and the forgetting step never use this: they run in float32.
    """
    import torch

    if device_type != "cuda":
        return Precision("float32", None, False)
    if capability is None:
        capability = torch.cuda.get_device_capability()
    if tuple(capability) >= (8, 0):
        return Precision("bfloat16", torch.bfloat16, False)
    return Precision("float16", torch.float16, True)


def device_description(device) -> str:
    """A short human description of a device (its name for a GPU)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda ({torch.cuda.get_device_name(index)})"
    return device.type


def cpu_model() -> str:
    """The CPU's model name (``model name`` in ``/proc/cpuinfo``; ``platform.processor()``
    elsewhere), or ``unknown CPU``."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(device) -> str:
    """What ran a computation: the GPU's name on CUDA, else ``cpu (<CPU model>)``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return device_description(device)
    return f"{device.type} ({cpu_model()})"


def package_source_hash() -> str:
    """SHA-256 (first 16 hex digits) over the package's Python sources, in name order.

    A chapter records it when executed; a test compares it with the package committed beside
    the chapter, so outputs produced by another version of the package are caught.
    """
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]
