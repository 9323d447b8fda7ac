import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from mnemo_tutorial import data as data_mod
from mnemo_tutorial.data import MNIST_MD5, ChecksumError, DataNotFoundError, load_mnist


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file (the MNIST format): magic (0, 0, type 0x08 = uint8, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


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
    np.testing.assert_array_equal((data.x_train[:, 0] * 255).round().numpy(), arrays["train-images-idx3-ubyte"])
    assert data.y_train.tolist() == list(arrays["train-labels-idx1-ubyte"])
    assert data.classes == data_mod.DATASET_CLASSES["mnist"]
    again = load_mnist(root=root, mirror=None, download=False)
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
    _, _, arrays = fake_mirror(tmp_path)
    fetched = []

    def fake_fetch(root):
        fetched.append(root)
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name, arr in arrays.items():
            write_idx(raw / name, arr)

    monkeypatch.setattr(data_mod, "_mnist_fetch", fake_fetch)
    root = tmp_path / "root"
    data = load_mnist(root=root, mirror=tmp_path / "no-mirror", download=True)
    assert fetched == [root] and data.source == "download" and data.x_test.shape == (5, 1, 28, 28)
    assert load_mnist(root=root, mirror=None, download=True).source == "root" and len(fetched) == 1


def test_a_failed_download_is_one_line_naming_the_files(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("[Errno 101] Network is unreachable\n  while fetching\n  the archive")

    monkeypatch.setattr(data_mod, "_mnist_fetch", offline)
    monkeypatch.delenv("MNEMO_MIRROR", raising=False)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(root=tmp_path / "root", mirror=None, download=True)
    msg = str(info.value)
    assert "\n" not in msg and "train-images-idx3-ubyte.gz" in msg and "MNEMO_MIRROR is not set" in msg
    assert msg.endswith("download failed: [Errno 101] Network is unreachable while fetching the archive")


def test_offline_environment_disables_the_download(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "_mnist_fetch", lambda root: pytest.fail("downloaded although offline"))
    monkeypatch.setenv("MNEMO_OFFLINE", "1")
    monkeypatch.delenv("MNEMO_MIRROR", raising=False)
    with pytest.raises(DataNotFoundError, match="download disabled"):
        load_mnist(root=tmp_path / "root", mirror=None)


def test_data_and_mirror_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path / "env-root"))
    assert data_mod.data_root() == tmp_path / "env-root" and data_mod.data_root(tmp_path) == tmp_path
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
    assert data_mod.DATASET_CLASSES["cifar10"][0] == "airplane" and data_mod.DATASET_CLASSES["faces"][-1] == "s40"


def test_load_dataset_rejects_unknown_names():
    with pytest.raises(ValueError, match="dataset must be one of cifar10, faces, mnist; got 'svhn'"):
        data_mod.load_dataset("svhn")
