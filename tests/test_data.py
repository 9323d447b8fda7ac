import gzip
import hashlib
import pickle
import re
import struct
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from mnemo_tutorial.training import data as data_mod
from mnemo_tutorial.training.data import (
    CIFAR10_CLASSES,
    MNIST_MD5,
    ChecksumError,
    DataNotFoundError,
    load_cifar10,
    load_mnist,
)


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file (the MNIST format): magic (0, 0, type 0x08 = uint8, ndim), big-endian dims,
    data."""
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + dims
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def flip_a_byte(path, offset=-1) -> None:
    """Corrupt a file in place: invert one byte (the last by default)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def fake_mirror(tmp_path, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw_files"
    raw.mkdir()
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    mirror = tmp_path / "mirror"
    (mirror / "mnist").mkdir(parents=True)
    md5 = {}
    for name, arr in arrays.items():
        write_idx(raw / name, arr)
        data = (raw / name).read_bytes()
        md5[name] = hashlib.md5(data).hexdigest()
        with gzip.open(mirror / "mnist" / f"{name}.gz", "wb") as f:
            f.write(data)
    return mirror, md5, arrays


def test_loads_from_mirror_then_from_root(tmp_path):
    mirror, md5, arrays = fake_mirror(tmp_path)
    root = tmp_path / "root"
    data = load_mnist(root=root, mirror=mirror, download=False, checksums=md5)
    assert data.source == "mirror"
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_test.shape == (5, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and float(data.x_train.max()) <= 1.0
    pixels = (data.x_train[:, 0] * 255).round().numpy()
    np.testing.assert_array_equal(pixels, arrays["train-images-idx3-ubyte"])
    assert data.y_train.tolist() == list(arrays["train-labels-idx1-ubyte"])
    assert data.classes == data_mod.DATASET_CLASSES["mnist"]
    again = load_mnist(root=root, mirror=None, download=False, checksums=md5)
    assert again.source == "root" and torch.equal(again.x_test, data.x_test)


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path):
    mirror, md5, _ = fake_mirror(tmp_path)
    bad = dict(md5, **{"t10k-labels-idx1-ubyte": "0" * 32})
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.*expected 0{32}"):
        load_mnist(root=root, mirror=mirror, download=False, checksums=bad)
    raw = root / "MNIST" / "raw"
    assert not (raw / "t10k-labels-idx1-ubyte").exists()
    assert not any(p.name.endswith(".tmp") for p in raw.iterdir())


def test_official_checksums_reject_fake_files(tmp_path):
    mirror, _, _ = fake_mirror(tmp_path)
    with pytest.raises(ChecksumError, match=MNIST_MD5["train-images-idx3-ubyte"]):
        load_mnist(root=tmp_path / "root", mirror=mirror, download=False)


def test_a_corrupted_file_in_the_root_is_refused_until_deleted(tmp_path, monkeypatch):
    mirror, md5, _ = fake_mirror(tmp_path)
    root = tmp_path / "root"
    first = load_mnist(root=root, mirror=mirror, download=False, checksums=md5)
    bad = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    flip_a_byte(bad)
    corrupted = bad.read_bytes()
    found = hashlib.md5(corrupted).hexdigest()
    monkeypatch.setattr(data_mod, "_mnist_fetch", lambda root: pytest.fail("downloaded"))
    expected = md5["train-labels-idx1-ubyte"]
    pattern = f"{re.escape(str(bad))}.*MD5 is {found}, expected {expected}.*delete it and re-run"
    with pytest.raises(ChecksumError, match=pattern):
        load_mnist(root=root, mirror=mirror, download=True, checksums=md5)
    assert bad.read_bytes() == corrupted  # reported, neither used nor replaced behind our back
    bad.unlink()  # what the message says to do: the next load fetches it again
    again = load_mnist(root=root, mirror=mirror, download=False, checksums=md5)
    assert again.source == "mirror" and torch.equal(again.y_train, first.y_train)
    assert load_mnist(root=root, mirror=None, download=False, checksums=md5).source == "root"


def test_official_checksums_reject_fake_files_already_in_the_root(tmp_path, monkeypatch):
    _, _, arrays = fake_mirror(tmp_path)
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, arr in arrays.items():
        write_idx(raw / name, arr)
    monkeypatch.setattr(data_mod, "_mnist_fetch", lambda root: pytest.fail("downloaded"))
    official = MNIST_MD5["train-images-idx3-ubyte"]
    with pytest.raises(ChecksumError, match=f"already in the data root.*expected {official}"):
        load_mnist(root=tmp_path / "root", mirror=None, download=True)


def test_missing_everywhere_names_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte.gz.*MNEMO_MIRROR"):
        load_mnist(root=tmp_path / "root", mirror=tmp_path / "empty", download=False)


def test_a_full_root_is_used_before_a_broken_mirror(tmp_path):
    mirror, md5, _ = fake_mirror(tmp_path)
    root = tmp_path / "root"
    load_mnist(root=root, mirror=mirror, download=False, checksums=md5)
    for f in (mirror / "mnist").iterdir():
        f.write_bytes(b"corrupt")  # would fail its checksum if the mirror were read again
    assert load_mnist(root=root, mirror=mirror, download=False, checksums=md5).source == "root"


def test_download_step_fills_the_root(tmp_path, monkeypatch):
    _, md5, arrays = fake_mirror(tmp_path)
    fetched = []

    def fake_fetch(root):
        fetched.append(root)
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name, arr in arrays.items():
            write_idx(raw / name, arr)

    monkeypatch.setattr(data_mod, "_mnist_fetch", fake_fetch)
    root = tmp_path / "root"
    data = load_mnist(root=root, mirror=tmp_path / "no-mirror", download=True, checksums=md5)
    assert fetched == [root] and data.source == "download" and data.x_test.shape == (5, 1, 28, 28)
    again = load_mnist(root=root, mirror=None, download=True, checksums=md5)
    assert again.source == "root" and len(fetched) == 1


def test_a_failed_download_is_one_line_naming_the_files(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("[Errno 101] Network is unreachable\n  while fetching\n  the archive")

    monkeypatch.setattr(data_mod, "_mnist_fetch", offline)
    monkeypatch.delenv("MNEMO_MIRROR", raising=False)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(root=tmp_path / "root", mirror=None, download=True)
    msg = str(info.value)
    assert "\n" not in msg and "train-images-idx3-ubyte.gz" in msg
    assert "MNEMO_MIRROR is not set" in msg
    assert msg.endswith(
        "download failed: [Errno 101] Network is unreachable while fetching the archive")


def test_offline_environment_disables_the_download(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "_mnist_fetch",
                        lambda root: pytest.fail("downloaded although offline"))
    monkeypatch.setenv("MNEMO_OFFLINE", "1")
    monkeypatch.delenv("MNEMO_MIRROR", raising=False)
    with pytest.raises(DataNotFoundError, match="download disabled"):
        load_mnist(root=tmp_path / "root", mirror=None)


def test_data_and_mirror_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path / "env-root"))
    assert data_mod.data_root() == tmp_path / "env-root"
    assert data_mod.data_root(tmp_path) == tmp_path
    monkeypatch.delenv("MNEMO_DATA")
    assert data_mod.data_root() == data_mod._repo_root() / "data"  # a checkout: its data/ folder
    monkeypatch.setattr(data_mod, "_repo_root", lambda: tmp_path / "site-packages")  # installed
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_mod.data_root() == tmp_path / "home" / "mnemo_data"
    monkeypatch.undo()
    monkeypatch.delenv("MNEMO_MIRROR", raising=False)
    assert data_mod.mirror_root() is None and data_mod.mirror_root(tmp_path) == tmp_path
    monkeypatch.setenv("MNEMO_MIRROR", str(tmp_path / "m"))
    assert data_mod.mirror_root() == tmp_path / "m"
    # a relative path that exists only from the repository root is taken from there
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNEMO_MIRROR", "tests")
    assert data_mod.mirror_root() == data_mod._repo_root() / "tests"


def test_class_table_matches_the_loaders():
    assert set(data_mod.DATASET_CLASSES) == set(data_mod.LOADERS) == {"mnist", "cifar10", "faces"}
    assert [len(data_mod.DATASET_CLASSES[d]) for d in ("mnist", "cifar10", "faces")] == [10, 10, 40]
    assert data_mod.DATASET_CLASSES["cifar10"][0] == "airplane"
    assert data_mod.DATASET_CLASSES["faces"][-1] == "s40"


def test_load_dataset_rejects_unknown_names():
    with pytest.raises(ValueError,
                       match="dataset must be one of cifar10, faces, mnist; got 'svhn'"):
        data_mod.load_dataset("svhn")


# ----------------------------------------------------------------------------- CIFAR-10 cache
def cifar_archive(tmp_path, name="mirror", shade=0):
    """A tiny ``cifar10-jpeg/{train,test}/<class>/0000.jpg`` tree (one flat-colour 32x32 JPEG
    per class and split) packed as the mirror's archive; returns it and its SHA-256."""
    src = tmp_path / f"{name}-src"
    for split, green in (("train", 100 + shade), ("test", 150 + shade)):
        for c, cls in enumerate(CIFAR10_CLASSES):
            folder = src / "cifar10-jpeg" / split / cls
            folder.mkdir(parents=True)
            colour = np.array([20 * c + 10, green, 200], dtype=np.uint8)
            image = Image.fromarray(np.broadcast_to(colour, (32, 32, 3)).copy())
            image.save(folder / "0000.jpg", quality=95)
    archive = tmp_path / name / data_mod.CIFAR10_JPEG_ARCHIVE
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar10-jpeg", arcname="cifar10-jpeg")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def count_decoding(monkeypatch) -> list:
    """Record each folder the JPEG decoder reads (train and test: two calls per rebuild)."""
    calls, decode = [], data_mod._decode_image_folder

    def counted(folder, classes):
        calls.append(folder.name)
        return decode(folder, classes)

    monkeypatch.setattr(data_mod, "_decode_image_folder", counted)
    return calls


def test_cifar10_cache_records_the_archive_and_is_reused(tmp_path, monkeypatch):
    archive, sha = cifar_archive(tmp_path)
    root = tmp_path / "root"
    first = load_cifar10(root=root, mirror=archive.parent, download=False,
                         checksums={archive.name: sha})
    tree = root / data_mod.CIFAR10_JPEG_DIR
    assert first.source == "mirror" and first.x_train.shape == (10, 3, 32, 32)
    assert data_mod.archive_record(tree) == sha
    state = torch.load(tree / data_mod.CIFAR10_JPEG_CACHE, weights_only=True)
    assert state["archive_sha256"] == sha and len(state["sha256"]) == 64
    calls = count_decoding(monkeypatch)
    again = load_cifar10(root=root, mirror=None, download=False)
    assert again.source == "root" and calls == []
    assert torch.equal(again.x_train, first.x_train) and torch.equal(again.y_test, first.y_test)


def _other_archive(state, tree):
    state["archive_sha256"] = "0" * 64
    state["sha256"] = data_mod._tensors_sha256(state)  # intact tensors, only the record differs


def _no_record(state, tree):
    del state["archive_sha256"]
    state["sha256"] = data_mod._tensors_sha256(state)


def _format_1(state, tree):  # the layout written before the cache recorded its archive
    for key in ("format", "archive_sha256", "sha256"):
        state.pop(key, None)
    state["format"] = 1


def _tensors_changed(state, tree):  # a damaged cache: the recorded SHA-256 no longer matches
    pass  # the zeroed images, under the SHA-256 of the decoded ones


def _tree_from_another_archive(state, tree):  # the JPEG files were replaced since
    state["sha256"] = data_mod._tensors_sha256(state)  # an intact cache of the old files
    (tree / data_mod.ARCHIVE_RECORD).write_text("1" * 64 + "  cifar10-jpeg.tar.gz\n")
    return "1" * 64


@pytest.mark.parametrize("tamper", [_other_archive, _no_record, _format_1, _tensors_changed,
                                    _tree_from_another_archive, "truncated"])
def test_cifar10_cache_that_does_not_match_its_archive_is_rebuilt(tmp_path, monkeypatch, tamper):
    archive, sha = cifar_archive(tmp_path)
    root = tmp_path / "root"
    first = load_cifar10(root=root, mirror=archive.parent, download=False,
                         checksums={archive.name: sha})
    tree = root / data_mod.CIFAR10_JPEG_DIR
    cache = tree / data_mod.CIFAR10_JPEG_CACHE
    expected_record = sha
    if tamper == "truncated":
        cache.write_bytes(cache.read_bytes()[:200])
    else:
        state = torch.load(cache, weights_only=True)
        state["x_train"] = torch.zeros_like(state["x_train"])  # what a trusted cache would give
        expected_record = tamper(state, tree) or sha
        torch.save(state, cache)
    calls = count_decoding(monkeypatch)
    again = load_cifar10(root=root, mirror=None, download=False)
    assert calls == ["train", "test"] and again.source == "root"
    assert torch.equal(again.x_train, first.x_train) and torch.equal(again.y_train, first.y_train)
    rebuilt = torch.load(cache, weights_only=True)
    assert rebuilt["archive_sha256"] == expected_record
    assert rebuilt["format"] == data_mod._CIFAR10_CACHE_FORMAT
    assert load_cifar10(root=root, mirror=None, download=False).source == "root"
    assert calls == ["train", "test"]  # the rebuilt cache is trusted again


def test_cifar10_stale_cache_without_its_jpeg_files_goes_back_to_the_mirror(tmp_path):
    archive, sha = cifar_archive(tmp_path)
    root = tmp_path / "root"
    sums = {archive.name: sha}
    first = load_cifar10(root=root, mirror=archive.parent, download=False, checksums=sums)
    tree = root / data_mod.CIFAR10_JPEG_DIR
    for split in ("train", "test"):
        for f in sorted((tree / split).rglob("*"), reverse=True):
            f.rmdir() if f.is_dir() else f.unlink()
        (tree / split).rmdir()
    state = torch.load(tree / data_mod.CIFAR10_JPEG_CACHE, weights_only=True)
    state["archive_sha256"] = "0" * 64
    torch.save(state, tree / data_mod.CIFAR10_JPEG_CACHE)
    with pytest.raises(DataNotFoundError, match="cifar10-jpeg.tar.gz"):
        load_cifar10(root=root, mirror=tmp_path / "empty", download=False)
    again = load_cifar10(root=root, mirror=archive.parent, download=False, checksums=sums)
    assert again.source == "mirror" and torch.equal(again.x_test, first.x_test)
    rebuilt = torch.load(tree / data_mod.CIFAR10_JPEG_CACHE, weights_only=True)
    assert rebuilt["archive_sha256"] == sha


def test_a_tree_mixing_two_archives_keeps_no_record(tmp_path):
    archive, sha = cifar_archive(tmp_path)
    other, other_sha = cifar_archive(tmp_path, name="other", shade=40)
    root = tmp_path / "root"
    tree = data_mod._extract_from_mirror(archive, root, "cifar10-jpeg", sha)
    assert data_mod.archive_record(tree) == sha
    for f in sorted((tree / "test").rglob("*"), reverse=True):
        f.rmdir() if f.is_dir() else f.unlink()
    (tree / "test").rmdir()
    data_mod._extract_from_mirror(other, root, "cifar10-jpeg", other_sha)  # train/ is kept
    assert (tree / "test").is_dir() and data_mod.archive_record(tree) is None
    data_mod._extract_from_mirror(other, root, "cifar10-jpeg", other_sha)  # nothing new
    assert data_mod.archive_record(tree) is None


def write_cifar_batches(folder, n=2):
    """The original release's six pickled batches, ``n`` flat images each (image i of batch b
    has level 10 * b + i), label = batch number."""
    folder.mkdir(parents=True)
    names = [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = np.repeat(np.arange(10 * b, 10 * b + n, dtype=np.uint8)[:, None], 3072, axis=1)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [b] * n}, f)
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in names}


def test_cifar10_original_release_is_checked_before_it_is_read(tmp_path, monkeypatch):
    root = tmp_path / "root"
    folder = root / data_mod.CIFAR10_ORIGINAL_DIR
    md5 = write_cifar_batches(folder)
    monkeypatch.setattr(data_mod, "CIFAR10_ORIGINAL_MD5", md5)
    d = load_cifar10(root=root, mirror=None, download=False)
    assert d.source == "root" and "original" in d.notes["format"]
    assert d.x_train.shape == (10, 3, 32, 32) and d.x_test.shape == (2, 3, 32, 32)
    assert d.y_train.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and d.y_test.tolist() == [5, 5]
    assert (d.x_test[:, 0, 0, 0] * 255).round().tolist() == [50.0, 51.0]
    flip_a_byte(folder / "test_batch", offset=100)
    found = hashlib.md5((folder / "test_batch").read_bytes()).hexdigest()
    expected = md5["test_batch"]
    with pytest.raises(ChecksumError, match=f"test_batch.*MD5 is {found}, expected {expected}"):
        load_cifar10(root=root, mirror=None, download=False)
    monkeypatch.undo()  # the official checksums refuse files that are not the real release
    with pytest.raises(ChecksumError, match=data_mod.CIFAR10_ORIGINAL_MD5["data_batch_1"]):
        load_cifar10(root=root, mirror=None, download=False)


# ----------------------------------------------------------------------------- Python version
def test_requires_python_admits_only_versions_with_the_tar_data_filter(repo):
    """``tarfile``'s ``filter="data"`` (used to extract the mirror's archives) exists from
    Python 3.10.12 and 3.11.4 (and in every 3.12); the project must not claim older ones."""
    from packaging.specifiers import SpecifierSet

    text = (repo / "pyproject.toml").read_text()
    spec = SpecifierSet(re.search(r'^requires-python\s*=\s*"([^"]+)"', text, re.M).group(1))
    assert not any(v in spec for v in ("3.9.18", "3.10.0", "3.10.11", "3.11.0", "3.11.3"))
    assert all(v in spec for v in ("3.10.12", "3.10.14", "3.11.4", "3.11.9", "3.12.0", "3.13.1"))
    assert hasattr(tarfile, "data_filter")  # and the interpreter running the tests has it
