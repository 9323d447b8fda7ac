import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

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
