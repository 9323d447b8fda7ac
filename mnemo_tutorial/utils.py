"""Small shared helpers: seeding (global for chapters, isolated for the library), device
choice, atomic file writes."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from mnemo_tutorial.env import select_device

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "get_device",
    "isolated_rng",
    "module_device",
    "seed_everything",
]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextmanager
def isolated_rng(seed: int, device: str | torch.device | None = None) -> Iterator[torch.Generator]:
    """Run a block with torch's CPU generator (and, for a CUDA ``device``, that device's
    generator) seeded with ``seed`` and restored afterwards; yields a CPU ``torch.Generator``
    seeded with ``seed``.

    Library code uses this instead of :func:`seed_everything`, so that calling it leaves every
    generator of the caller as it found it. ``torch.manual_seed`` would also seed every CUDA
    device (or queue that seeding until CUDA starts), and ``fork_rng`` restores only the
    devices it is given; so only the CPU generator and the forked device are seeded here, and
    no other CUDA generator is touched (tested where CUDA is present; on a machine without
    CUDA there is no CUDA state, and the test checks that no CUDA seeding is requested).
    """
    devices: list[int] = []
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index
        devices = [index if index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        for d in devices:
            with torch.cuda.device(d):
                torch.cuda.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` or ``"auto"``: CUDA when available, else CPU
    (:func:`mnemo_tutorial.env.select_device`)."""
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return select_device("auto")
    return torch.device(device)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success. The
    file gets the permissions a plain ``open`` would give it (``mkstemp`` makes it private)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def module_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
