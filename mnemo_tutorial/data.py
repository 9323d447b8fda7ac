"""Datasets as in-memory tensors, found in this order (one ladder, :func:`_find`, shared by
every loader):

1. the data root (``MNEMO_DATA``, default ``data/`` in the repository);
2. an offline mirror named by ``MNEMO_MIRROR`` (copied into the root, checksums verified);
3. a download with the ecosystem's own loader (torchvision, scikit-learn);
4. otherwise a :class:`DataNotFoundError`: one line naming the files needed and where to put them.

Importing this module does not import torch (the loaders do), so the command line can check
a dataset name and its class count (:data:`DATASET_CLASSES`) before any slow work.
"""
from __future__ import annotations

import gzip
import hashlib
import numbers
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # annotations only; torch is imported by the functions that need it
    import torch
    from torch.utils.data import TensorDataset


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
        from torch.utils.data import TensorDataset

        return TensorDataset(self.x_train, self.y_train)

    def test_dataset(self) -> TensorDataset:
        from torch.utils.data import TensorDataset

        return TensorDataset(self.x_test, self.y_test)

    def sizes(self) -> str:
        return f"{self.name}: {len(self.y_train):,} train / {len(self.y_test):,} test, {self.num_classes} classes, input {self.input_shape}"


# ---------------------------------------------------------------------------------------
# Where data lives
# ---------------------------------------------------------------------------------------
def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _in_checkout(repo: Path) -> bool:
    """Whether the package runs from a source checkout (its project file beside it)."""
    return (repo / "pyproject.toml").is_file()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``MNEMO_DATA``, else the checkout's ``data/`` folder (or
    ``~/mnemo_data`` when the package is installed outside a checkout)."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MNEMO_DATA")
    if env:
        return Path(env)
    repo = _repo_root()
    return repo / "data" if _in_checkout(repo) else Path.home() / "mnemo_data"


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


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    return file_digest(path, "sha256")


# ---------------------------------------------------------------------------------------
# The ladder: root -> mirror -> download -> one-line error
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ladder:
    """How one dataset is found. ``load(root, source)`` reads it from the root (None when it is
    not there), ``from_mirror(root, mirror)`` copies it from the mirror into the root (False
    when the mirror lacks it), ``fetch(root)`` downloads it into the root. The last three
    fields word the :class:`DataNotFoundError`."""

    title: str
    load: Callable[[Path, str], "ImageData | None"]
    from_mirror: Callable[[Path, Path], bool]
    fetch: Callable[[Path], None]
    wanted: str  # what to put into the mirror
    mirror_place: str  # where in the mirror
    alternative: Callable[[Path], str]  # the other way to provide it, given the root


def _missing(ladder: _Ladder, root: Path, mirror: Path | None, why: str) -> DataNotFoundError:
    where = f"; mirror {mirror} lacks it" if mirror is not None else "; MNEMO_MIRROR is not set"
    return DataNotFoundError(
        f"{ladder.title} not found: put {ladder.wanted} into {ladder.mirror_place} and set MNEMO_MIRROR, "
        f"or {ladder.alternative(root)}{where}; {why}"
    )


def _find(ladder: _Ladder, root: str | os.PathLike | None, mirror: str | os.PathLike | None,
          download: bool | None) -> ImageData:
    """Walk the ladder for one dataset (see the module docstring)."""
    root, mirror_dir = data_root(root), mirror_root(mirror)
    data = ladder.load(root, "root")
    if data is None and mirror_dir is not None and ladder.from_mirror(root, mirror_dir):
        data = ladder.load(root, "mirror")
    if data is not None:
        return data
    if not downloads_allowed(download):
        raise _missing(ladder, root, mirror_dir, "download disabled")
    try:
        ladder.fetch(root)
    except Exception as exc:  # network errors come in many types
        raise _missing(ladder, root, mirror_dir, f"download failed: {one_line(exc)}") from None
    data = ladder.load(root, "download")
    if data is None:
        raise _missing(ladder, root, mirror_dir, "the download left no readable files")
    return data


def _copy_from_mirror(src: Path, dest: Path, expected_md5: str | None) -> None:
    """Copy (decompressing a ``.gz``) ``src`` to ``dest``, verifying the MD5 of the result."""
    from .utils import atomic_path

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


# SHA-256 of the archives in the offline mirror (from the mirror's README).
MIRROR_SHA256: dict[str, str] = {
    "cifar10-jpeg.tar.gz": "1fab6e733a06cc26af0ccd8cfea06054bfe6fe3f0a1a296b26aac44a058c45ac",
    "att_faces.tar.gz": "7e3efd79e8b420935cac88eedada2d3790f874bac552b4c7d20ea6ba38ddc311",
}


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


def _archive_step(archive_name: str, top: str, checksums: dict[str, str]) -> Callable[[Path, Path], bool]:
    """The mirror step of a dataset shipped as one archive: extract ``<mirror>/<archive_name>``."""

    def step(root: Path, mirror: Path) -> bool:
        archive = mirror / archive_name
        if not archive.exists():
            return False
        _extract_from_mirror(archive, root, top, checksums.get(archive_name))
        return True

    return step


# ---------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------
MNIST_CLASSES: list[str] = [str(i) for i in range(10)]
# MD5 of the uncompressed IDX files (the official values, as torchvision lists them).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _mnist_load(root: Path, source: str) -> ImageData | None:
    from torchvision.datasets import MNIST

    if not all((root / "MNIST" / "raw" / n).exists() for n in MNIST_MD5):
        return None
    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    return ImageData(
        name="mnist",
        x_train=train.data.unsqueeze(1).float().div_(255.0),
        y_train=train.targets.long(),
        x_test=test.data.unsqueeze(1).float().div_(255.0),
        y_test=test.targets.long(),
        classes=list(MNIST_CLASSES),
        source=source,
    )


def _mnist_mirror_step(checksums: dict[str, str]) -> Callable[[Path, Path], bool]:
    def step(root: Path, mirror: Path) -> bool:
        found = {}
        for n in MNIST_MD5:
            for cand in (mirror / "mnist" / f"{n}.gz", mirror / "mnist" / n, mirror / f"{n}.gz"):
                if cand.exists():
                    found[n] = cand
                    break
        if len(found) < len(MNIST_MD5):
            return False
        raw = root / "MNIST" / "raw"
        for n, src in found.items():
            if not (raw / n).exists():
                _copy_from_mirror(src, raw / n, checksums.get(n))
        return True

    return step


def _torchvision_fetch(name: str) -> Callable[[Path], None]:
    """The download step of a torchvision dataset class ``name``: both splits into the root."""

    def fetch(root: Path) -> None:
        import torchvision.datasets

        dataset = getattr(torchvision.datasets, name)
        for train in (True, False):
            dataset(str(root), train=train, download=True)

    return fetch


_mnist_fetch = _torchvision_fetch("MNIST")


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
    ladder = _Ladder(
        title="MNIST", load=_mnist_load,
        from_mirror=_mnist_mirror_step(MNIST_MD5 if checksums is None else checksums), fetch=_mnist_fetch,
        wanted=", ".join(f"{n}.gz" for n in MNIST_MD5), mirror_place="<MNEMO_MIRROR>/mnist/",
        alternative=lambda root: f"put their uncompressed versions into {root / 'MNIST' / 'raw'}",
    )
    return _find(ladder, root, mirror, download)


# ---------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------
CIFAR10_CLASSES: list[str] = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_DIR = "cifar10-jpeg"
CIFAR10_JPEG_CACHE = "cifar10-jpeg-uint8.pt"
CIFAR10_ORIGINAL_DIR = "cifar-10-batches-py"
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
    import torch
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
    import torch

    from .utils import atomic_path

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


def _cifar10_data(t: dict[str, torch.Tensor], source: str, fmt: str) -> ImageData:
    """uint8 (N, 3, 32, 32) images and labels ``t`` -> float32 [0, 1] ImageData."""
    for split in ("x_train", "x_test"):
        if tuple(t[split].shape[1:]) != (3, 32, 32):
            raise ValueError(f"CIFAR-10 images must be 32x32 RGB; found images of shape {tuple(t[split].shape[1:])}")
    return ImageData(
        name="cifar10",
        x_train=t["x_train"].float().div_(255.0), y_train=t["y_train"].long(),
        x_test=t["x_test"].float().div_(255.0), y_test=t["y_test"].long(),
        classes=list(CIFAR10_CLASSES), source=source, notes={"format": fmt},
    )


def _cifar10_load(root: Path, source: str) -> ImageData | None:
    """The original release (``<root>/cifar-10-batches-py``), else the JPEG copy, else None."""
    import torch
    from torchvision.datasets import CIFAR10

    if (root / CIFAR10_ORIGINAL_DIR).is_dir():
        tr, te = (CIFAR10(str(root), train=split, download=False) for split in (True, False))
        t = {"x_train": torch.from_numpy(tr.data).permute(0, 3, 1, 2), "y_train": torch.tensor(tr.targets),
             "x_test": torch.from_numpy(te.data).permute(0, 3, 1, 2), "y_test": torch.tensor(te.targets)}
        return _cifar10_data(t, source, "original CIFAR-10 python release (torchvision)")
    tree = root / CIFAR10_JPEG_DIR
    if (tree / CIFAR10_JPEG_CACHE).exists() or ((tree / "train").is_dir() and (tree / "test").is_dir()):
        return _cifar10_data(_cifar10_jpeg_tensors(tree), source, CIFAR10_JPEG_NOTE)
    return None


_cifar10_fetch = _torchvision_fetch("CIFAR10")


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
    sums = MIRROR_SHA256 if checksums is None else checksums
    ladder = _Ladder(
        title="CIFAR-10", load=_cifar10_load,
        from_mirror=_archive_step(CIFAR10_JPEG_ARCHIVE, CIFAR10_JPEG_DIR, sums), fetch=_cifar10_fetch,
        wanted=CIFAR10_JPEG_ARCHIVE, mirror_place="<MNEMO_MIRROR>/",
        alternative=lambda root: (f"unpack the original cifar-10-python.tar.gz into {root} "
                                  f"(giving {root / CIFAR10_ORIGINAL_DIR})"),
    )
    return _find(ladder, root, mirror, download)


# ---------------------------------------------------------------------------------------
# Faces: the ORL / AT&T "Database of Faces" (Olivetti Research Laboratory), 40 people x 10
# ---------------------------------------------------------------------------------------
FACES_ARCHIVE = "att_faces.tar.gz"
FACES_DIR = "att_faces"
FACES_PEOPLE = 40
FACES_PER_PERSON = 10
FACES_TRAIN_PER_PERSON = 7
FACES_SIZE = 64
FACES_CLASSES: list[str] = [f"s{p}" for p in range(1, FACES_PEOPLE + 1)]


def _faces_split(images: torch.Tensor, size: int, source: str, notes: dict[str, str]) -> ImageData:
    """images (40, 10, size, size) float32, person-major, image order 1..10 -> the 7/3 split."""
    import torch

    k = FACES_TRAIN_PER_PERSON
    labels = torch.arange(FACES_PEOPLE, dtype=torch.int64)
    return ImageData(
        name="faces",
        x_train=images[:, :k].reshape(-1, 1, size, size).contiguous(),
        y_train=labels.repeat_interleave(k),
        x_test=images[:, k:].reshape(-1, 1, size, size).contiguous(),
        y_test=labels.repeat_interleave(FACES_PER_PERSON - k),
        classes=list(FACES_CLASSES),
        source=source,
        notes={**notes, "split": f"images 1-{k} of each person train, {k + 1}-{FACES_PER_PERSON} test"},
    )


def _read_orl(tree: Path, size: int) -> torch.Tensor:
    """``tree/s<p>/<n>.pgm`` for p = 1..40, n = 1..10 -> (40, 10, size, size) float32 in [0, 1].

    Every image is resized to ``size`` x ``size`` (bilinear with PIL's antialiasing; the
    92x112 originals are squeezed, the aspect ratio is not kept)."""
    import numpy as np
    import torch
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


def _olivetti_tensors(data_home: Path, size: int, download: bool) -> torch.Tensor:
    """scikit-learn's Olivetti faces (the same 400 faces, 64x64) -> (40, 10, size, size)."""
    import numpy as np
    import torch
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


def _faces_loader(size: int) -> Callable[[Path, str], ImageData | None]:
    """The ORL folder ``<root>/att_faces``, else scikit-learn's copy in ``<root>/scikit_learn_data``."""

    def load(root: Path, source: str) -> ImageData | None:
        tree, sk_home = root / FACES_DIR, root / "scikit_learn_data"
        if (tree / "s1" / "1.pgm").exists():
            note = f"ORL PGM files (92x112 grey), resized to {size}x{size}"
            return _faces_split(_read_orl(tree, size), size, source, {"format": note})
        if any(sk_home.glob("olivetti*.pkz")):  # scikit-learn names it olivetti_py3.pkz
            note = f"scikit-learn Olivetti faces (64x64 grey){'' if size == 64 else f', resized to {size}x{size}'}"
            return _faces_split(_olivetti_tensors(sk_home, size, download=False), size, source, {"format": note})
        return None

    return load


def _faces_fetch(root: Path) -> None:
    from sklearn.datasets import fetch_olivetti_faces

    fetch_olivetti_faces(data_home=str(root / "scikit_learn_data"), shuffle=False, download_if_missing=True)


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
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 8:
        raise ValueError(f"size must be an integer >= 8; got {size!r}")
    size = int(size)
    sums = MIRROR_SHA256 if checksums is None else checksums
    ladder = _Ladder(
        title="faces", load=_faces_loader(size),
        from_mirror=_archive_step(FACES_ARCHIVE, FACES_DIR, sums), fetch=_faces_fetch,
        wanted=f"{FACES_ARCHIVE} (the ORL faces, att_faces/s1 ... s40/1.pgm ... 10.pgm)",
        mirror_place="<MNEMO_MIRROR>/",
        alternative=lambda root: f"unpack it into {root} (giving {root / FACES_DIR})",
    )
    return _find(ladder, root, mirror, download)


# ---------------------------------------------------------------------------------------
# Registry (the only place datasets are named)
# ---------------------------------------------------------------------------------------
LOADERS: dict[str, Callable[..., ImageData]] = {"mnist": load_mnist, "cifar10": load_cifar10, "faces": load_faces}
# Class names of each dataset, known without loading it (the command line checks class
# indices against these before any data is read).
DATASET_CLASSES: dict[str, list[str]] = {"mnist": MNIST_CLASSES, "cifar10": CIFAR10_CLASSES, "faces": FACES_CLASSES}


def load_dataset(name: str, **kwargs) -> ImageData:
    """Load dataset ``name`` (one of ``LOADERS``) with the search order above."""
    if name not in LOADERS:
        raise ValueError(f"dataset must be one of {', '.join(sorted(LOADERS))}; got {name!r}")
    return LOADERS[name](**kwargs)
