"""Datasets as in-memory tensors, found in this order (one ladder, :func:`_find`, shared by
every loader):

1. the data root (``MNEMO_DATA``, default ``data/`` in the repository);
2. an offline mirror named by ``MNEMO_MIRROR`` (copied into the root, checksums verified);
3. a download with the ecosystem's own loader (torchvision, scikit-learn), from the official
   hosts or, when ``MNEMO_DOWNLOAD_URL`` names one, from a mirror of them
   (:func:`download_hosts`: a proxy, an institutional mirror, a local server in tests);
4. otherwise a :class:`DataNotFoundError`: one line naming the files needed and where to put them.

Files already in the data root are checked too, every time they are used: a file whose checksum
the module knows (the MNIST files, the batches of the original CIFAR-10 release) is hashed
before it is read, and a mismatch is a :class:`ChecksumError` naming the file, the expected and
the found checksum; the file is left as it is (never replaced behind the user's back, never
used): delete it and re-run to fetch it again. Hashing is cheap enough to repeat on every load
(about 0.1-0.2 s for the four MNIST files), so no record of verified files is kept.
An archive extracted from the mirror leaves a record of its SHA-256 in the extracted folder
(:data:`ARCHIVE_RECORD`), and the decoded CIFAR-10 cache is used only while it was built from
that same archive and its tensors still match their recorded SHA-256; otherwise it is rebuilt.

Importing this module does not import torch (the loaders do), so the command line can check
a dataset name and its class count (:data:`DATASET_CLASSES`) before any slow work.
"""

from __future__ import annotations

import gzip
import hashlib
import numbers
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = [
    "ARCHIVE_RECORD",
    "CIFAR10_CLASSES",
    "CIFAR10_JPEG_ARCHIVE",
    "CIFAR10_JPEG_CACHE",
    "CIFAR10_JPEG_DIR",
    "CIFAR10_JPEG_NOTE",
    "CIFAR10_ORIGINAL_DIR",
    "CIFAR10_ORIGINAL_MD5",
    "DATASET_CLASSES",
    "DOWNLOAD_LAYOUT",
    "FACES_ARCHIVE",
    "FACES_CLASSES",
    "FACES_DIR",
    "FACES_PEOPLE",
    "FACES_PER_PERSON",
    "FACES_SIZE",
    "FACES_TRAIN_PER_PERSON",
    "LOADERS",
    "MIRROR_SHA256",
    "MNIST_CLASSES",
    "MNIST_MD5",
    "archive_record",
    "ChecksumError",
    "data_root",
    "DataNotFoundError",
    "download_hosts",
    "download_url",
    "downloads_allowed",
    "file_digest",
    "ImageData",
    "load_cifar10",
    "load_dataset",
    "load_faces",
    "load_mnist",
    "md5_file",
    "mirror_root",
    "one_line",
    "sha256_file",
    "verify_root_file",
]

if TYPE_CHECKING:  # annotations only; torch is imported by the functions that need it
    import torch
    from torch.utils.data import TensorDataset


class DataNotFoundError(FileNotFoundError):
    """A dataset is in none of the places the loader looks, and cannot be downloaded."""


class ChecksumError(ValueError):
    """A data file (from the offline mirror, or already in the data root) does not have the
    expected checksum."""


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
    # how every source's images are brought to these tensors (the same for every copy of the
    # data set: part of its identity, unlike ``source`` and ``notes``, which say where the
    # copy came from)
    preprocessing: str = ""

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

    def identity(self) -> dict[str, object]:
        """What the data set is, whatever copy it was read from: name, split sizes, input
        shape, class names and preprocessing (what checkpoint keys hash)."""
        return {
            "dataset": self.name,
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "input_shape": list(self.input_shape),
            "classes": list(self.classes),
            "preprocessing": self.preprocessing,
        }

    def sizes(self) -> str:
        return (
            f"{self.name}: {len(self.y_train):,} train / {len(self.y_test):,} test, "
            f"{self.num_classes} classes, input {self.input_shape}"
        )


# ---------------------------------------------------------------------------------------
# Where data lives
# ---------------------------------------------------------------------------------------
def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


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
    """``mirror`` if given, else ``MNEMO_MIRROR`` (relative paths resolved from the working
    directory)."""
    if mirror is not None:
        return Path(mirror)
    env = os.environ.get("MNEMO_MIRROR")
    if not env:
        return None
    path = Path(env)
    if not path.is_absolute() and not path.exists() and (_repo_root() / path).exists():
        return _repo_root() / path  # a relative path given from the repository root
    return path


DOWNLOAD_LAYOUT = {
    "mnist": "mnist/train-images-idx3-ubyte.gz (and the three other MNIST .gz files)",
    "cifar10": "cifar10/cifar-10-python.tar.gz",
    "faces": "faces/olivettifaces.mat",
}


def download_url() -> str | None:
    """``MNEMO_DOWNLOAD_URL`` without its trailing slash, or None when it is not set; a value
    that is not an http(s) or file URL raises ValueError."""
    url = os.environ.get("MNEMO_DOWNLOAD_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://", "file://")):
        raise ValueError(
            f"MNEMO_DOWNLOAD_URL must be an http://, https:// or file:// URL; got {url!r}"
        )
    return url.rstrip("/")


@contextmanager
def download_hosts(url: str | None = None) -> Iterator[None]:
    """Point the ecosystem's downloaders at ``url`` (default :func:`download_url`) instead of
    the official hosts, for the duration of the block; nothing changes when there is none.

    The mirror holds the official files under :data:`DOWNLOAD_LAYOUT` (the same names,
    checked against the same checksums as from the official hosts): ``<url>/mnist/`` for
    torchvision's MNIST, ``<url>/cifar10/cifar-10-python.tar.gz`` for torchvision's CIFAR-10,
    ``<url>/faces/olivettifaces.mat`` for scikit-learn's Olivetti faces."""
    url = download_url() if url is None else url.rstrip("/")
    if not url:
        yield
        return
    import torchvision.datasets as tvd
    from sklearn.datasets import _olivetti_faces as olivetti

    saved = (tvd.MNIST.mirrors, tvd.CIFAR10.url, olivetti.FACES)
    tvd.MNIST.mirrors = [f"{url}/mnist/"]
    tvd.CIFAR10.url = f"{url}/cifar10/cifar-10-python.tar.gz"
    olivetti.FACES = type(saved[2])(
        filename=saved[2].filename, url=f"{url}/faces/olivettifaces.mat", checksum=saved[2].checksum
    )
    try:
        yield
    finally:
        tvd.MNIST.mirrors, tvd.CIFAR10.url, olivetti.FACES = saved


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


def verify_root_file(path: str | os.PathLike, algorithm: str, expected: str | None) -> None:
    """Check a file already in the data root against its known checksum before it is used.

    ``expected`` is the hex digest with ``hashlib``'s ``algorithm`` (None: nothing is known,
    nothing checked). A mismatch raises :class:`ChecksumError` naming the file, both checksums
    and the remedy; the file is left untouched (the loaders never replace a file in the root
    on their own, and never read one that failed its check).
    """
    if expected is None:
        return
    got = file_digest(path, algorithm)
    if got != expected.lower():
        raise ChecksumError(
            f"checksum mismatch for {path} (already in the data root): {algorithm.upper()} is "
            f"{got}, expected {expected}; the file is corrupted or a different version: delete "
            "it and re-run, so it is fetched again (from MNEMO_MIRROR or by download)"
        )


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
    load: Callable[[Path, str], ImageData | None]
    from_mirror: Callable[[Path, Path], bool]
    fetch: Callable[[Path], None]
    wanted: str  # what to put into the mirror
    mirror_place: str  # where in the mirror
    alternative: Callable[[Path], str]  # the other way to provide it, given the root


def _missing(ladder: _Ladder, root: Path, mirror: Path | None, why: str) -> DataNotFoundError:
    where = f"; mirror {mirror} lacks it" if mirror is not None else "; MNEMO_MIRROR is not set"
    return DataNotFoundError(
        f"{ladder.title} not found: put {ladder.wanted} into {ladder.mirror_place} and set "
        f"MNEMO_MIRROR, or {ladder.alternative(root)}{where}; {why}"
    )


def _find(
    ladder: _Ladder,
    root: str | os.PathLike | None,
    mirror: str | os.PathLike | None,
    download: bool | None,
) -> ImageData:
    """Walk the ladder for one dataset (see the module docstring). ``ladder.load`` verifies
    what it reads from the root and raises :class:`ChecksumError` on a mismatch, which ends the
    walk: a damaged file in the root is reported, never silently replaced."""
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
        why = f"download failed: {one_line(exc)}"
        raise _missing(ladder, root, mirror_dir, why) from None
    data = ladder.load(root, "download")
    if data is None:
        raise _missing(ladder, root, mirror_dir, "the download left no readable files")
    return data


def _copy_from_mirror(src: Path, dest: Path, expected_md5: str | None) -> None:
    """Copy (decompressing a ``.gz``) ``src`` to ``dest``, verifying the MD5 of the result."""
    from mnemo_tutorial.utils import atomic_path

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


# The file, inside a folder extracted from a mirror archive, that records the archive's SHA-256
# (``sha256sum`` format: "<hex>  <archive name>").
ARCHIVE_RECORD = ".archive.sha256"


def archive_record(tree: Path) -> str | None:
    """The SHA-256 of the archive ``tree`` was extracted from, as recorded in
    ``tree/ARCHIVE_RECORD``; None when the folder has no record (unpacked by hand)."""
    try:
        fields = (tree / ARCHIVE_RECORD).read_text().split()
    except FileNotFoundError:
        return None
    return fields[0].lower() if fields else None


def _extract_from_mirror(archive: Path, root: Path, top: str, expected_sha256: str | None) -> Path:
    """Verify ``archive``'s SHA-256, extract its top-level folder ``top`` into ``root``.

    The archive is unpacked into a temporary folder beside the destination and moved into
    place only when complete, so an interrupted run never leaves a half-extracted tree.
    Members that would land outside the folder are refused (``tarfile``'s "data" filter,
    Python >= 3.10.12 / 3.11.4). The archive's SHA-256 is recorded in ``root/top/ARCHIVE_RECORD``
    (written before the moves; removed instead when the folder already held entries from an
    archive with another checksum, whose provenance is then unknown). Returns ``root / top``.
    """
    import tarfile
    import tempfile

    from mnemo_tutorial.utils import atomic_write_text

    got = sha256_file(archive)
    if expected_sha256 is not None and got != expected_sha256.lower():
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
            raise DataNotFoundError(
                f"{archive} has no top-level folder {top}/; is it the right archive?"
            )
        dest.mkdir(exist_ok=True)
        items = sorted(src.iterdir())
        if not any((dest / item.name).exists() for item in items):
            atomic_write_text(dest / ARCHIVE_RECORD, f"{got}  {archive.name}\n")
        elif archive_record(dest) != got:  # kept entries come from elsewhere
            (dest / ARCHIVE_RECORD).unlink(missing_ok=True)
        for item in items:
            target = dest / item.name
            if not target.exists():
                os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _archive_step(
    archive_name: str, top: str, checksums: dict[str, str]
) -> Callable[[Path, Path], bool]:
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


MNIST_PREPROCESSING = "grey, 28x28, float32 in [0, 1]"


def _mnist_loader(checksums: dict[str, str]) -> Callable[[Path, str], ImageData | None]:
    """Read the four IDX files of ``<root>/MNIST/raw`` (None when one is missing), each
    checked against its MD5 in ``checksums`` first (:func:`verify_root_file`)."""

    def load(root: Path, source: str) -> ImageData | None:
        from torchvision.datasets.mnist import read_image_file, read_label_file

        raw = root / "MNIST" / "raw"
        if not all((raw / n).exists() for n in MNIST_MD5):
            return None
        for n in MNIST_MD5:
            verify_root_file(raw / n, "md5", checksums.get(n))
        # read the verified files themselves (torchvision's MNIST class would prefer a legacy
        # MNIST/processed/*.pt copy when one is there)
        splits = ("train", "t10k")
        images = {n: read_image_file(str(raw / f"{n}-images-idx3-ubyte")) for n in splits}
        labels = {n: read_label_file(str(raw / f"{n}-labels-idx1-ubyte")) for n in splits}
        return ImageData(
            name="mnist",
            x_train=images["train"].unsqueeze(1).float().div_(255.0),
            y_train=labels["train"].long(),
            x_test=images["t10k"].unsqueeze(1).float().div_(255.0),
            y_test=labels["t10k"].long(),
            classes=list(MNIST_CLASSES),
            source=source,
            preprocessing=MNIST_PREPROCESSING,
        )

    return load


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
        with download_hosts():
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

    Looks in ``<root>/MNIST/raw``, then in ``<mirror>/mnist/*.gz``, then downloads with
    ``torchvision.datasets.MNIST`` (``download=None`` means: unless the environment sets
    ``MNEMO_OFFLINE=1``). Every file is checked against its MD5 in ``checksums`` (the
    official values by default): a copy from the mirror before it is moved into the root,
    and the files in the root every time they are read (about 0.2 s). A file in the root that
    fails its check raises :class:`ChecksumError` (it is not replaced automatically): delete
    it and re-run, and it is fetched again.
    """
    sums = MNIST_MD5 if checksums is None else checksums
    ladder = _Ladder(
        title="MNIST",
        load=_mnist_loader(sums),
        from_mirror=_mnist_mirror_step(sums),
        fetch=_mnist_fetch,
        wanted=", ".join(f"{n}.gz" for n in MNIST_MD5),
        mirror_place="<MNEMO_MIRROR>/mnist/",
        alternative=lambda root: f"put their uncompressed versions into {root / 'MNIST' / 'raw'}",
    )
    return _find(ladder, root, mirror, download)


# ---------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------
CIFAR10_CLASSES: list[str] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_DIR = "cifar10-jpeg"
CIFAR10_JPEG_CACHE = "cifar10-jpeg-uint8.pt"
CIFAR10_ORIGINAL_DIR = "cifar-10-batches-py"
# MD5 of the original release's batch files (the official values, as torchvision lists them).
CIFAR10_ORIGINAL_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_PREPROCESSING = "RGB, 32x32, float32 in [0, 1], not normalised"
# 2: the cache records the SHA-256 of the archive its JPEG tree came from, and of its tensors
_CIFAR10_CACHE_FORMAT = 2
_CIFAR10_TENSORS = ("x_train", "y_train", "x_test", "y_test")
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
            f"{folder} must hold one folder per class, {', '.join(classes)}; "
            f"found {', '.join(ds.classes)}"
        )
    if len(ds) == 0:
        raise DataNotFoundError(f"{folder} holds no images")
    first = ds[0][0]
    images = np.empty((len(ds), *first.shape), dtype=np.uint8)
    for i, (path, _) in enumerate(ds.samples):
        img, _ = ds[i]
        if img.shape != first.shape:
            raise ValueError(
                f"{path} is {img.shape[1]}x{img.shape[0]}, expected "
                f"{first.shape[1]}x{first.shape[0]} like the others"
            )
        images[i] = img
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor(ds.targets, dtype=torch.int64)
    return x, y


def _tensors_sha256(state: dict) -> str:
    """SHA-256 over the dtype, shape and bytes of the four tensors of a CIFAR-10 cache."""
    h = hashlib.sha256()
    for key in _CIFAR10_TENSORS:
        t = state[key].contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().data.cast("B"))
    return h.hexdigest()


def _cached_tensors(cache: Path, archive_sha256: str | None) -> dict | None:
    """The cache's contents when they can be trusted, else None (the caller rebuilds it).

    Trusted means: readable, the current format, recording ``archive_sha256`` (the record of
    the tree it sits in; None for a tree unpacked by hand) as the archive it was decoded from,
    and tensors whose SHA-256 equals the one recorded when the cache was written (``torch.load``
    itself does not notice damaged tensor bytes). About 0.3 s for the full dataset.
    """
    import torch

    try:
        state = torch.load(cache, map_location="cpu", weights_only=True)
    except Exception:  # truncated or not a torch file: rebuilt, never trusted
        return None
    if not isinstance(state, dict) or state.get("format") != _CIFAR10_CACHE_FORMAT:
        return None
    if "archive_sha256" not in state or state["archive_sha256"] != archive_sha256:
        return None
    if not all(isinstance(state.get(k), torch.Tensor) for k in _CIFAR10_TENSORS):
        return None
    return state if state.get("sha256") == _tensors_sha256(state) else None


def _cifar10_jpeg_tensors(tree: Path) -> dict[str, torch.Tensor] | None:
    """uint8 tensors of the JPEG copy, decoded once and cached in ``tree/CIFAR10_JPEG_CACHE``.

    The cache records the SHA-256 of the archive the tree was extracted from
    (:func:`archive_record`) and of its own tensors; a cache that lacks either record, or
    whose records no longer match (the tree was extracted from another archive, the cache was
    damaged or written by an older version), is rebuilt from the JPEG files. None when it must
    be rebuilt and the tree holds no JPEG files (``train/`` and ``test/``) to rebuild it from.
    """
    import torch

    from mnemo_tutorial.utils import atomic_path

    cache, source = tree / CIFAR10_JPEG_CACHE, archive_record(tree)
    if cache.exists():
        state = _cached_tensors(cache, source)
        if state is not None:
            return state
    if not ((tree / "train").is_dir() and (tree / "test").is_dir()):
        return None
    x_train, y_train = _decode_image_folder(tree / "train", CIFAR10_CLASSES)
    x_test, y_test = _decode_image_folder(tree / "test", CIFAR10_CLASSES)
    state = {
        "format": _CIFAR10_CACHE_FORMAT,
        "archive_sha256": source,
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
    }
    state["sha256"] = _tensors_sha256(state)
    with atomic_path(cache) as tmp:
        torch.save(state, tmp)
    return state


def _cifar10_data(t: dict[str, torch.Tensor], source: str, fmt: str) -> ImageData:
    """uint8 (N, 3, 32, 32) images and labels ``t`` -> float32 [0, 1] ImageData."""
    for split in ("x_train", "x_test"):
        if tuple(t[split].shape[1:]) != (3, 32, 32):
            raise ValueError(
                "CIFAR-10 images must be 32x32 RGB; found images of shape "
                f"{tuple(t[split].shape[1:])}"
            )
    return ImageData(
        name="cifar10",
        x_train=t["x_train"].float().div_(255.0),
        y_train=t["y_train"].long(),
        x_test=t["x_test"].float().div_(255.0),
        y_test=t["y_test"].long(),
        classes=list(CIFAR10_CLASSES),
        source=source,
        notes={"format": fmt},
        preprocessing=CIFAR10_PREPROCESSING,
    )


def _read_cifar10_batches(folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch files of the original release -> uint8 (N, 3, 32, 32) and int64 (N,), each file
    checked against :data:`CIFAR10_ORIGINAL_MD5` before it is unpickled (as torchvision
    reads them)."""
    import pickle

    import numpy as np
    import torch

    data, labels = [], []
    for name in names:
        verify_root_file(folder / name, "md5", CIFAR10_ORIGINAL_MD5.get(name))
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(entry["data"])
        labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
    x = torch.from_numpy(np.vstack(data).reshape(-1, 3, 32, 32))
    return x, torch.tensor(labels, dtype=torch.int64)


def _cifar10_load(root: Path, source: str) -> ImageData | None:
    """The original release (``<root>/cifar-10-batches-py``, every batch file MD5-checked),
    else the JPEG copy (its cache checked against its records), else None."""
    original = root / CIFAR10_ORIGINAL_DIR
    if all((original / n).exists() for n in CIFAR10_ORIGINAL_MD5):
        names = sorted(CIFAR10_ORIGINAL_MD5)
        x_train, y_train = _read_cifar10_batches(original, [n for n in names if n != "test_batch"])
        x_test, y_test = _read_cifar10_batches(original, ["test_batch"])
        t = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        return _cifar10_data(t, source, "original CIFAR-10 python release (torchvision)")
    tree = root / CIFAR10_JPEG_DIR
    state = _cifar10_jpeg_tensors(tree) if tree.is_dir() else None
    return None if state is None else _cifar10_data(state, source, CIFAR10_JPEG_NOTE)


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

    1. in the root: the original release as torchvision unpacks it
       (``<root>/cifar-10-batches-py``; each batch file is checked against its official MD5,
       :data:`CIFAR10_ORIGINAL_MD5`, before it is read, and a mismatch raises
       :class:`ChecksumError`: delete the folder and re-run), else the JPEG copy
       (``<root>/cifar10-jpeg/{train,test}/<class>/*.jpg`` or its decoded cache);
    2. in the mirror: ``<mirror>/cifar10-jpeg.tar.gz`` (SHA-256 checked against ``checksums``,
       the mirror README's value by default), extracted into ``<root>/cifar10-jpeg``, which
       records the archive's SHA-256 (``<root>/cifar10-jpeg/.archive.sha256``);
    3. a download with ``torchvision.datasets.CIFAR10`` (original release) into the root
       (``download=None`` means: unless the environment sets ``MNEMO_OFFLINE=1``).

    The JPEG copy is decoded once with ``torchvision.datasets.ImageFolder`` and cached as a
    uint8 tensor file (``<root>/cifar10-jpeg/cifar10-jpeg-uint8.pt``, written atomically), so
    later loads never decode a JPEG again. The cache records the SHA-256 of the archive the
    JPEG files came from and of its own tensors; it is used only while both match (the
    folder's record, the tensors read back), and otherwise rebuilt from the JPEG files (or,
    when they are gone, the ladder goes on to the mirror). ``notes["format"]`` says which copy
    was used.
    """
    sums = MIRROR_SHA256 if checksums is None else checksums
    ladder = _Ladder(
        title="CIFAR-10",
        load=_cifar10_load,
        from_mirror=_archive_step(CIFAR10_JPEG_ARCHIVE, CIFAR10_JPEG_DIR, sums),
        fetch=_cifar10_fetch,
        wanted=CIFAR10_JPEG_ARCHIVE,
        mirror_place="<MNEMO_MIRROR>/",
        alternative=lambda root: (
            f"unpack the original cifar-10-python.tar.gz into {root} "
            f"(giving {root / CIFAR10_ORIGINAL_DIR})"
        ),
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
    split = f"images 1-{k} of each person train, {k + 1}-{FACES_PER_PERSON} test"
    labels = torch.arange(FACES_PEOPLE, dtype=torch.int64)
    return ImageData(
        name="faces",
        x_train=images[:, :k].reshape(-1, 1, size, size).contiguous(),
        y_train=labels.repeat_interleave(k),
        x_test=images[:, k:].reshape(-1, 1, size, size).contiguous(),
        y_test=labels.repeat_interleave(FACES_PER_PERSON - k),
        classes=list(FACES_CLASSES),
        source=source,
        notes={**notes, "split": split},
        preprocessing=f"grey, {size}x{size}, float32 in [0, 1]; {split}",
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
                    f"{path} is missing: the faces folder must hold s1 ... s{FACES_PEOPLE}, "
                    f"each with 1.pgm ... {FACES_PER_PERSON}.pgm"
                )
            with Image.open(path) as img:
                small = img.convert("L").resize((size, size), Image.Resampling.BILINEAR)
                out[p, n] = np.asarray(small, dtype=np.float32) / 255.0
    return torch.from_numpy(out)


def _olivetti_tensors(data_home: Path, size: int, download: bool) -> torch.Tensor:
    """scikit-learn's Olivetti faces (the same 400 faces, 64x64) -> (40, 10, size, size)."""
    import numpy as np
    import torch
    from sklearn.datasets import fetch_olivetti_faces

    bunch = fetch_olivetti_faces(
        data_home=str(data_home), shuffle=False, download_if_missing=download
    )
    images = np.asarray(bunch.images, dtype=np.float32)
    target = np.asarray(bunch.target)
    order = np.argsort(target, kind="stable")  # person-major, each person's images in their order
    x = torch.from_numpy(images[order]).reshape(FACES_PEOPLE, FACES_PER_PERSON, *images.shape[1:])
    if x.shape[-1] != size or x.shape[-2] != size:
        x = (
            torch.nn.functional.interpolate(
                x.reshape(-1, 1, *x.shape[-2:]),
                size=(size, size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
            .clamp_(0, 1)
            .reshape(FACES_PEOPLE, FACES_PER_PERSON, size, size)
        )
    return x.contiguous()


def _faces_loader(size: int) -> Callable[[Path, str], ImageData | None]:
    """The ORL folder ``<root>/att_faces``, else scikit-learn's copy in
    ``<root>/scikit_learn_data``."""

    def load(root: Path, source: str) -> ImageData | None:
        tree, sk_home = root / FACES_DIR, root / "scikit_learn_data"
        if (tree / "s1" / "1.pgm").exists():
            note = f"ORL PGM files (92x112 grey), resized to {size}x{size}"
            return _faces_split(_read_orl(tree, size), size, source, {"format": note})
        if any(sk_home.glob("olivetti*.pkz")):  # scikit-learn names it olivetti_py3.pkz
            resized = "" if size == 64 else f", resized to {size}x{size}"
            note = f"scikit-learn Olivetti faces (64x64 grey){resized}"
            images = _olivetti_tensors(sk_home, size, download=False)
            return _faces_split(images, size, source, {"format": note})
        return None

    return load


def _faces_fetch(root: Path) -> None:
    from sklearn.datasets import fetch_olivetti_faces

    with download_hosts():
        fetch_olivetti_faces(
            data_home=str(root / "scikit_learn_data"), shuffle=False, download_if_missing=True
        )


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
        title="faces",
        load=_faces_loader(size),
        from_mirror=_archive_step(FACES_ARCHIVE, FACES_DIR, sums),
        fetch=_faces_fetch,
        wanted=f"{FACES_ARCHIVE} (the ORL faces, att_faces/s1 ... s40/1.pgm ... 10.pgm)",
        mirror_place="<MNEMO_MIRROR>/",
        alternative=lambda root: f"unpack it into {root} (giving {root / FACES_DIR})",
    )
    return _find(ladder, root, mirror, download)


# ---------------------------------------------------------------------------------------
# Registry (the only place datasets are named)
# ---------------------------------------------------------------------------------------
LOADERS: dict[str, Callable[..., ImageData]] = {
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "faces": load_faces,
}
# Class names of each dataset, known without loading it (the command line checks class
# indices against these before any data is read).
DATASET_CLASSES: dict[str, list[str]] = {
    "mnist": MNIST_CLASSES,
    "cifar10": CIFAR10_CLASSES,
    "faces": FACES_CLASSES,
}


def load_dataset(name: str, **kwargs) -> ImageData:
    """Load dataset ``name`` (one of ``LOADERS``) with the search order above."""
    if name not in LOADERS:
        raise ValueError(f"dataset must be one of {', '.join(sorted(LOADERS))}; got {name!r}")
    return LOADERS[name](**kwargs)
