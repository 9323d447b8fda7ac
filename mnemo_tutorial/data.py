"""Datasets as in-memory tensors, found in this order:

1. the data root (``MNEMO_DATA``, default ``data/`` in the repository);
2. an offline mirror named by ``MNEMO_MIRROR`` (copied into the root, checksums verified);
3. a download with the ecosystem's own loader (torchvision for MNIST);
4. otherwise a :class:`DataNotFoundError` naming the files needed and where to put them.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import TensorDataset

from .utils import atomic_path


class DataNotFoundError(FileNotFoundError):
    """A dataset is in none of the places the loader looks, and cannot be downloaded."""


class ChecksumError(ValueError):
    """A file from the offline mirror does not have the expected checksum."""


@dataclass
class ImageData:
    """A dataset held as tensors.

    x_train: (N, *input_shape) float32, y_train: (N,) int64; same for the test split.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    source: str = "root"
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def train_dataset(self) -> TensorDataset:
        return TensorDataset(self.x_train, self.y_train)

    def test_dataset(self) -> TensorDataset:
        return TensorDataset(self.x_test, self.y_test)

    def sizes(self) -> str:
        return f"{self.name}: {len(self.y_train):,} train / {len(self.y_test):,} test, {self.num_classes} classes, input {self.input_shape}"


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``MNEMO_DATA``, else the repository's ``data/`` folder
    (or ``~/mnemo_data`` when the package is installed outside a checkout)."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MNEMO_DATA")
    if env:
        return Path(env)
    repo = _repo_root()
    if (repo / "_config.yml").exists():
        return repo / "data"
    return Path.home() / "mnemo_data"


def mirror_root(mirror: str | os.PathLike | None = None) -> Path | None:
    """``mirror`` if given, else ``MNEMO_MIRROR`` (relative paths resolved from the working directory)."""
    if mirror is not None:
        return Path(mirror)
    env = os.environ.get("MNEMO_MIRROR")
    return Path(env) if env else None


def md5_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# MD5 of the uncompressed IDX files (the official values, as torchvision lists them).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _copy_from_mirror(src: Path, dest: Path, expected_md5: str | None) -> None:
    """Copy (decompressing a ``.gz``) ``src`` to ``dest``, verifying the MD5 of the result."""
    with atomic_path(dest) as tmp:
        opener: Callable = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        if expected_md5 is not None:
            got = md5_file(tmp)
            if got != expected_md5:
                raise ChecksumError(
                    f"checksum mismatch for {src}: MD5 of the uncompressed file is {got}, "
                    f"expected {expected_md5}; replace the file with an intact copy"
                )


def load_mnist(
    root: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    download: bool = True,
    checksums: dict[str, str] | None = None,
) -> ImageData:
    """MNIST as tensors: x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64.

    Looks in ``<root>/MNIST/raw``, then in ``<mirror>/mnist/*.gz`` (verifying ``checksums``,
    the official MD5s by default), then downloads with ``torchvision.datasets.MNIST``.
    """
    from torchvision.datasets import MNIST

    root = data_root(root)
    mirror_dir = mirror_root(mirror)
    checksums = MNIST_MD5 if checksums is None else checksums
    raw = root / "MNIST" / "raw"
    names = list(MNIST_MD5)
    source = "root"
    if not all((raw / n).exists() for n in names):
        source = ""
        if mirror_dir is not None:
            found = {}
            for n in names:
                for cand in (mirror_dir / "mnist" / f"{n}.gz", mirror_dir / "mnist" / n, mirror_dir / f"{n}.gz"):
                    if cand.exists():
                        found[n] = cand
                        break
            if len(found) == len(names):
                for n, src in found.items():
                    if not (raw / n).exists():
                        _copy_from_mirror(src, raw / n, checksums.get(n))
                source = "mirror"
        if not source and download:
            try:
                MNIST(str(root), train=True, download=True)
                MNIST(str(root), train=False, download=True)
                source = "download"
            except Exception as exc:  # network errors come in many types
                raise _mnist_missing(root, mirror_dir, f"download failed: {exc}") from None
        if not source:
            raise _mnist_missing(root, mirror_dir, "download disabled")
    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    return ImageData(
        name="mnist",
        x_train=train.data.unsqueeze(1).float().div_(255.0),
        y_train=train.targets.long(),
        x_test=test.data.unsqueeze(1).float().div_(255.0),
        y_test=test.targets.long(),
        classes=[str(i) for i in range(10)],
        source=source,
    )


def _mnist_missing(root: Path, mirror: Path | None, why: str) -> DataNotFoundError:
    files = ", ".join(f"{n}.gz" for n in MNIST_MD5)
    where = f"; mirror {mirror} lacks them" if mirror is not None else "; MNEMO_MIRROR is not set"
    return DataNotFoundError(
        f"MNIST not found: put {files} (or their uncompressed versions in {root / 'MNIST' / 'raw'}) "
        f"into <MNEMO_MIRROR>/mnist/ and set MNEMO_MIRROR{where}; {why}"
    )


LOADERS: dict[str, Callable[..., ImageData]] = {"mnist": load_mnist}


def load_dataset(name: str, **kwargs) -> ImageData:
    """Load dataset ``name`` (one of ``LOADERS``) with the search order above."""
    if name not in LOADERS:
        raise ValueError(f"dataset must be one of {', '.join(sorted(LOADERS))}; got {name!r}")
    return LOADERS[name](**kwargs)
