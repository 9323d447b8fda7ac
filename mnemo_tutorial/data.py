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
    if not env:
        return None
    path = Path(env)
    if not path.is_absolute() and not path.exists() and (_repo_root() / path).exists():
        return _repo_root() / path  # a relative path given from the repository root
    return path


def downloads_allowed(download: bool | None) -> bool:
    """``download`` if given, else True unless ``MNEMO_OFFLINE`` is set to a true value."""
    if download is not None:
        return bool(download)
    return os.environ.get("MNEMO_OFFLINE", "").lower() not in ("1", "true", "yes")


def one_line(exc: BaseException) -> str:
    """An exception's message on a single line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def file_digest(path: str | os.PathLike, algorithm: str, chunk: int = 1 << 20) -> str:
    """Hex digest of a file with ``hashlib``'s ``algorithm`` ("md5", "sha256", ...)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: str | os.PathLike) -> str:
    """Hex MD5 of a file."""
    return file_digest(path, "md5")


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
    download: bool | None = None,
    checksums: dict[str, str] | None = None,
) -> ImageData:
    """MNIST as tensors: x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64.

    Looks in ``<root>/MNIST/raw``, then in ``<mirror>/mnist/*.gz`` (verifying ``checksums``,
    the official MD5s by default), then downloads with ``torchvision.datasets.MNIST``
    (``download=None`` means: unless the environment sets ``MNEMO_OFFLINE=1``).
    """
    from torchvision.datasets import MNIST

    root = data_root(root)
    mirror_dir = mirror_root(mirror)
    download = downloads_allowed(download)
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
                raise _mnist_missing(root, mirror_dir, f"download failed: {one_line(exc)}") from None
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


# ---------------------------------------------------------------------------------------
# Shared helpers for archives in the offline mirror
# ---------------------------------------------------------------------------------------
# SHA-256 of the archives in the offline mirror (from the mirror's README).
MIRROR_SHA256: dict[str, str] = {
    "cifar10-jpeg.tar.gz": "1fab6e733a06cc26af0ccd8cfea06054bfe6fe3f0a1a296b26aac44a058c45ac",
    "att_faces.tar.gz": "7e3efd79e8b420935cac88eedada2d3790f874bac552b4c7d20ea6ba38ddc311",
}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    return file_digest(path, "sha256")


def _extract_from_mirror(archive: Path, root: Path, top: str, expected_sha256: str | None) -> Path:
    """Verify ``archive``'s SHA-256, extract its top-level folder ``top`` into ``root``.

    The archive is unpacked into a temporary folder beside the destination and moved into
    place only when complete, so an interrupted run never leaves a half-extracted tree.
    Members that would land outside the folder are refused (``tarfile``'s "data" filter).
    Returns ``root / top``.
    """
    import tarfile
    import tempfile

    if expected_sha256 is not None:
        got = sha256_file(archive)
        if got != expected_sha256:
            raise ChecksumError(
                f"checksum mismatch for {archive}: SHA-256 is {got}, expected {expected_sha256}; "
                "replace the file with an intact copy"
            )
    root.mkdir(parents=True, exist_ok=True)
    dest = root / top
    tmp = Path(tempfile.mkdtemp(prefix=f".{top}.", dir=root))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        src = tmp / top
        if not src.is_dir():
            raise DataNotFoundError(f"{archive} has no top-level folder {top}/; is it the right archive?")
        dest.mkdir(exist_ok=True)
        for item in sorted(src.iterdir()):
            target = dest / item.name
            if not target.exists():
                os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------
CIFAR10_CLASSES: list[str] = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_DIR = "cifar10-jpeg"
CIFAR10_JPEG_CACHE = "cifar10-jpeg-uint8.pt"
_CIFAR10_CACHE_FORMAT = 1
CIFAR10_JPEG_NOTE = (
    "offline copy: every image is a JPEG re-encoding of the original CIFAR-10 image "
    "(mean absolute pixel difference about 6/255), so accuracies can differ slightly from "
    "the original binary release"
)


def _read_rgb(path: str):
    """The image file at ``path`` as an (H, W, 3) uint8 array."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _decode_image_folder(folder: Path, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode an ImageFolder tree ``folder/<class>/*.jpg`` into uint8 (N, 3, H, W) and int64 (N,).

    The class folders must be exactly ``classes`` (their alphabetical order is the label order).
    """
    import numpy as np
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(str(folder), loader=_read_rgb)
    if ds.classes != classes:
        raise ValueError(
            f"{folder} must hold one folder per class, {', '.join(classes)}; found {', '.join(ds.classes)}"
        )
    if len(ds) == 0:
        raise DataNotFoundError(f"{folder} holds no images")
    first = ds[0][0]
    images = np.empty((len(ds), *first.shape), dtype=np.uint8)
    for i, (path, _) in enumerate(ds.samples):
        img, _ = ds[i]
        if img.shape != first.shape:
            raise ValueError(f"{path} is {img.shape[1]}x{img.shape[0]}, expected {first.shape[1]}x{first.shape[0]} like the others")
        images[i] = img
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor(ds.targets, dtype=torch.int64)
    return x, y


def _cifar10_jpeg_tensors(tree: Path) -> dict[str, torch.Tensor]:
    """uint8 tensors of the JPEG copy, decoded once and cached in ``tree/CIFAR10_JPEG_CACHE``."""
    cache = tree / CIFAR10_JPEG_CACHE
    if cache.exists():
        state = torch.load(cache, map_location="cpu", weights_only=True)
        if state.get("format") == _CIFAR10_CACHE_FORMAT:
            return state
    x_train, y_train = _decode_image_folder(tree / "train", CIFAR10_CLASSES)
    x_test, y_test = _decode_image_folder(tree / "test", CIFAR10_CLASSES)
    state = {"format": _CIFAR10_CACHE_FORMAT, "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    with atomic_path(cache) as tmp:
        torch.save(state, tmp)
    return state


def _cifar10_jpeg_present(tree: Path) -> bool:
    return (tree / CIFAR10_JPEG_CACHE).exists() or ((tree / "train").is_dir() and (tree / "test").is_dir())


def load_cifar10(
    root: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    download: bool | None = None,
    checksums: dict[str, str] | None = None,
) -> ImageData:
    """CIFAR-10 as tensors: x (N, 3, 32, 32) float32 in [0, 1] (no normalisation: the models
    normalise inside, so mnemonic codes stay raw images), y (N,) int64, labels 0-9 =
    airplane ... truck. 50,000 train / 10,000 test.

    Looks, in order:

    1. in the root: the original release as torchvision unpacks it (``<root>/cifar-10-batches-py``),
       else the JPEG copy (``<root>/cifar10-jpeg/{train,test}/<class>/*.jpg`` or its decoded cache);
    2. in the mirror: ``<mirror>/cifar10-jpeg.tar.gz`` (SHA-256 checked against ``checksums``,
       the mirror README's value by default), extracted into ``<root>/cifar10-jpeg``;
    3. a download with ``torchvision.datasets.CIFAR10`` (original release) into the root
       (``download=None`` means: unless the environment sets ``MNEMO_OFFLINE=1``).

    The JPEG copy is decoded once with ``torchvision.datasets.ImageFolder`` and cached as a
    uint8 tensor file (``<root>/cifar10-jpeg/cifar10-jpeg-uint8.pt``, written atomically), so
    later loads never decode a JPEG again. ``notes["format"]`` says which copy was used.
    """
    from torchvision.datasets import CIFAR10

    root = data_root(root)
    mirror_dir = mirror_root(mirror)
    download = downloads_allowed(download)
    checksums = MIRROR_SHA256 if checksums is None else checksums
    tree = root / CIFAR10_JPEG_DIR
    original = root / "cifar-10-batches-py"

    def from_original(source: str) -> ImageData:
        train = CIFAR10(str(root), train=True, download=False)
        test = CIFAR10(str(root), train=False, download=False)
        return _cifar10_data(
            torch.from_numpy(train.data).permute(0, 3, 1, 2), torch.tensor(train.targets),
            torch.from_numpy(test.data).permute(0, 3, 1, 2), torch.tensor(test.targets),
            source, {"format": "original CIFAR-10 python release (torchvision)"},
        )

    def from_jpeg(source: str) -> ImageData:
        t = _cifar10_jpeg_tensors(tree)
        for split in ("x_train", "x_test"):
            if tuple(t[split].shape[1:]) != (3, 32, 32):
                raise ValueError(f"{tree} must hold 32x32 RGB images; found images of shape {tuple(t[split].shape[1:])}")
        return _cifar10_data(t["x_train"], t["y_train"], t["x_test"], t["y_test"], source, {"format": CIFAR10_JPEG_NOTE})

    if original.is_dir():
        return from_original("root")
    if _cifar10_jpeg_present(tree):
        return from_jpeg("root")
    archive = mirror_dir / CIFAR10_JPEG_ARCHIVE if mirror_dir is not None else None
    if archive is not None and archive.exists():
        _extract_from_mirror(archive, root, CIFAR10_JPEG_DIR, checksums.get(CIFAR10_JPEG_ARCHIVE))
        return from_jpeg("mirror")
    if not download:
        raise _cifar10_missing(root, mirror_dir, "download disabled")
    try:
        CIFAR10(str(root), train=True, download=True)
        CIFAR10(str(root), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise _cifar10_missing(root, mirror_dir, f"download failed: {one_line(exc)}") from None
    return from_original("download")


def _cifar10_data(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
    source: str, notes: dict[str, str],
) -> ImageData:
    return ImageData(
        name="cifar10",
        x_train=x_train.float().div_(255.0),
        y_train=y_train.long(),
        x_test=x_test.float().div_(255.0),
        y_test=y_test.long(),
        classes=list(CIFAR10_CLASSES),
        source=source,
        notes=notes,
    )


def _cifar10_missing(root: Path, mirror: Path | None, why: str) -> DataNotFoundError:
    where = f"; mirror {mirror} lacks it" if mirror is not None else "; MNEMO_MIRROR is not set"
    return DataNotFoundError(
        f"CIFAR-10 not found: put {CIFAR10_JPEG_ARCHIVE} into <MNEMO_MIRROR>/ and set MNEMO_MIRROR, "
        f"or unpack the original cifar-10-python.tar.gz into {root} (giving {root / 'cifar-10-batches-py'})"
        f"{where}; {why}"
    )


LOADERS["cifar10"] = load_cifar10


# ---------------------------------------------------------------------------------------
# Faces: the ORL / AT&T "Database of Faces" (Olivetti Research Laboratory), 40 people x 10
# ---------------------------------------------------------------------------------------
FACES_ARCHIVE = "att_faces.tar.gz"
FACES_DIR = "att_faces"
FACES_PEOPLE = 40
FACES_PER_PERSON = 10
FACES_TRAIN_PER_PERSON = 7
FACES_SIZE = 64


def _faces_split(images: torch.Tensor, size: int, source: str, notes: dict[str, str]) -> ImageData:
    """images (40, 10, size, size) float32, person-major, image order 1..10 -> the 7/3 split."""
    k = FACES_TRAIN_PER_PERSON
    labels = torch.arange(FACES_PEOPLE, dtype=torch.int64)
    x_train = images[:, :k].reshape(-1, 1, size, size).contiguous()
    x_test = images[:, k:].reshape(-1, 1, size, size).contiguous()
    return ImageData(
        name="faces",
        x_train=x_train,
        y_train=labels.repeat_interleave(k),
        x_test=x_test,
        y_test=labels.repeat_interleave(FACES_PER_PERSON - k),
        classes=[f"s{p}" for p in range(1, FACES_PEOPLE + 1)],
        source=source,
        notes={**notes, "split": f"images 1-{k} of each person train, {k + 1}-{FACES_PER_PERSON} test"},
    )


def _read_orl(tree: Path, size: int) -> torch.Tensor:
    """``tree/s<p>/<n>.pgm`` for p = 1..40, n = 1..10 -> (40, 10, size, size) float32 in [0, 1].

    Every image is resized to ``size`` x ``size`` (bilinear with PIL's antialiasing; the
    92x112 originals are squeezed, the aspect ratio is not kept)."""
    import numpy as np
    from PIL import Image

    out = np.empty((FACES_PEOPLE, FACES_PER_PERSON, size, size), dtype=np.float32)
    for p in range(FACES_PEOPLE):
        for n in range(FACES_PER_PERSON):
            path = tree / f"s{p + 1}" / f"{n + 1}.pgm"
            if not path.exists():
                raise DataNotFoundError(
                    f"{path} is missing: the faces folder must hold s1 ... s{FACES_PEOPLE}, each with 1.pgm ... {FACES_PER_PERSON}.pgm"
                )
            with Image.open(path) as img:
                out[p, n] = np.asarray(img.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    return torch.from_numpy(out)


def _orl_present(tree: Path) -> bool:
    return (tree / "s1" / "1.pgm").exists()


def _olivetti_tensors(data_home: Path, size: int, download: bool) -> torch.Tensor:
    """scikit-learn's Olivetti faces (the same 400 faces, 64x64) -> (40, 10, size, size)."""
    import numpy as np
    from sklearn.datasets import fetch_olivetti_faces

    bunch = fetch_olivetti_faces(data_home=str(data_home), shuffle=False, download_if_missing=download)
    images = np.asarray(bunch.images, dtype=np.float32)
    target = np.asarray(bunch.target)
    order = np.argsort(target, kind="stable")  # person-major, each person's images in their order
    x = torch.from_numpy(images[order]).reshape(FACES_PEOPLE, FACES_PER_PERSON, *images.shape[1:])
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.interpolate(
            x.reshape(-1, 1, *x.shape[-2:]), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0, 1).reshape(FACES_PEOPLE, FACES_PER_PERSON, size, size)
    return x.contiguous()


def load_faces(
    root: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    download: bool | None = None,
    checksums: dict[str, str] | None = None,
    size: int = FACES_SIZE,
) -> ImageData:
    """The 40-person ORL / Olivetti faces: x (N, 1, size, size) float32 in [0, 1], y (N,) int64.

    Labels 0-39 are the people s1 ... s40. Split, the same for every source: for each person,
    images 1-7 are training images and images 8-10 test images (280 train / 120 test).
    Every source is brought to ``size`` x ``size`` (64 by default, scikit-learn's size; the
    92x112 ORL images are resized with PIL's antialiased bilinear filter, aspect ratio not kept).

    Looks, in order:

    1. in the root: the ORL folder ``<root>/att_faces/s<person>/<n>.pgm``, else scikit-learn's
       cached copy under ``<root>/scikit_learn_data``;
    2. in the mirror: ``<mirror>/att_faces.tar.gz`` (SHA-256 checked against ``checksums``,
       the mirror README's value by default), extracted into ``<root>/att_faces``;
    3. a download with ``sklearn.datasets.fetch_olivetti_faces`` into ``<root>/scikit_learn_data``
       (``download=None`` means: unless the environment sets ``MNEMO_OFFLINE=1``).
    """
    if int(size) < 8:
        raise ValueError(f"size must be an integer >= 8; got {size!r}")
    size = int(size)
    root = data_root(root)
    mirror_dir = mirror_root(mirror)
    download = downloads_allowed(download)
    checksums = MIRROR_SHA256 if checksums is None else checksums
    tree = root / FACES_DIR
    sk_home = root / "scikit_learn_data"
    orl_note = {"format": f"ORL PGM files (92x112 grey), resized to {size}x{size}"}
    sk_note = {"format": f"scikit-learn Olivetti faces (64x64 grey){'' if size == 64 else f', resized to {size}x{size}'}"}

    if _orl_present(tree):
        return _faces_split(_read_orl(tree, size), size, "root", orl_note)
    if any(sk_home.glob("olivetti*.pkz")):  # scikit-learn names it olivetti_py3.pkz
        return _faces_split(_olivetti_tensors(sk_home, size, download=False), size, "root", sk_note)
    archive = mirror_dir / FACES_ARCHIVE if mirror_dir is not None else None
    if archive is not None and archive.exists():
        _extract_from_mirror(archive, root, FACES_DIR, checksums.get(FACES_ARCHIVE))
        return _faces_split(_read_orl(tree, size), size, "mirror", orl_note)
    if not download:
        raise _faces_missing(root, mirror_dir, "download disabled")
    try:
        images = _olivetti_tensors(sk_home, size, download=True)
    except Exception as exc:  # network errors come in many types
        raise _faces_missing(root, mirror_dir, f"download failed: {one_line(exc)}") from None
    return _faces_split(images, size, "download", sk_note)


def _faces_missing(root: Path, mirror: Path | None, why: str) -> DataNotFoundError:
    where = f"; mirror {mirror} lacks it" if mirror is not None else "; MNEMO_MIRROR is not set"
    return DataNotFoundError(
        f"faces not found: put {FACES_ARCHIVE} (the ORL faces, att_faces/s1 ... s40/1.pgm ... 10.pgm) "
        f"into <MNEMO_MIRROR>/ and set MNEMO_MIRROR, or unpack it into {root} (giving {root / FACES_DIR}){where}; {why}"
    )


LOADERS["faces"] = load_faces
