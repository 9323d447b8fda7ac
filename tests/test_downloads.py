"""The download path a reader's run takes, pointed at a local server standing in for the
official hosts (MNEMO_DOWNLOAD_URL), and the results shipped inside the package."""

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from mnemo_tutorial import shipped
from mnemo_tutorial.training import data as data_mod

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("MNEMO_MIRROR", ROOT.parent / "shared" / "data"))


def _readers_path():
    spec = importlib.util.spec_from_file_location("readers_path", ROOT / "scripts" / "readers_path.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["readers_path"] = module
    spec.loader.exec_module(module)
    return module


readers_path = _readers_path()


def test_download_url_is_checked(monkeypatch):
    monkeypatch.delenv("MNEMO_DOWNLOAD_URL", raising=False)
    assert data_mod.download_url() is None
    monkeypatch.setenv("MNEMO_DOWNLOAD_URL", "http://mirror.example/data/")
    assert data_mod.download_url() == "http://mirror.example/data"
    monkeypatch.setenv("MNEMO_DOWNLOAD_URL", "ftp://mirror.example")
    with pytest.raises(ValueError, match="MNEMO_DOWNLOAD_URL must be an http"):
        data_mod.download_url()


def test_download_hosts_points_the_downloaders_there_and_back(monkeypatch):
    import torchvision.datasets as tvd
    from sklearn.datasets import _olivetti_faces as olivetti

    before = (list(tvd.MNIST.mirrors), tvd.CIFAR10.url, olivetti.FACES)
    with data_mod.download_hosts("http://127.0.0.1:9/base/"):
        assert tvd.MNIST.mirrors == ["http://127.0.0.1:9/base/mnist/"]
        assert tvd.CIFAR10.url == "http://127.0.0.1:9/base/cifar10/cifar-10-python.tar.gz"
        assert olivetti.FACES.url == "http://127.0.0.1:9/base/faces/olivettifaces.mat"
        assert olivetti.FACES.checksum == before[2].checksum  # the official file's checksum
    assert (list(tvd.MNIST.mirrors), tvd.CIFAR10.url, olivetti.FACES) == before
    monkeypatch.delenv("MNEMO_DOWNLOAD_URL", raising=False)
    with data_mod.download_hosts():  # nothing set: the official hosts
        assert tvd.CIFAR10.url == before[1]


@pytest.mark.skipif(not (MIRROR / "mnist").is_dir(), reason="no MNIST in the data mirror")
def test_mnist_downloads_from_the_download_url_exactly(tmp_path, monkeypatch):
    """torchvision fetches the .gz files from the server; the IDX files inside are checked
    against the official MD5s (the mirror's gzip wrappers are not the official ones, so
    torchvision's .gz MD5s are replaced here, as scripts/readers_path.py does)."""
    import torchvision.datasets as tvd

    hosts = tmp_path / "hosts" / "mnist"
    hosts.mkdir(parents=True)
    for gz in (MIRROR / "mnist").glob("*.gz"):
        shutil.copyfile(gz, hosts / gz.name)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in hosts.iterdir()}
    monkeypatch.setattr(tvd.MNIST, "resources", [(n, md5[n]) for n, _ in tvd.MNIST.resources])
    with readers_path.serve(tmp_path / "hosts") as url:
        monkeypatch.setenv("MNEMO_DOWNLOAD_URL", url)
        got = data_mod.load_mnist(root=tmp_path / "root", mirror=tmp_path / "no-mirror", download=True)
    assert got.source == "download"
    reference = data_mod.load_mnist(root=tmp_path / "ref", mirror=MIRROR, download=False)
    assert (got.x_train == reference.x_train).all() and (got.y_test == reference.y_test).all()
    assert got.identity() == reference.identity()


@pytest.mark.skipif(not (MIRROR / "att_faces.tar.gz").is_file(), reason="no faces in the data mirror")
def test_faces_download_through_scikit_learn_gives_the_orl_images(tmp_path, monkeypatch):
    """The rebuilt olivettifaces.mat, fetched by scikit-learn from the local server, reads
    back as the same 400 images and the same data set identity (so the same checkpoint key)."""
    from sklearn.datasets import _olivetti_faces as olivetti

    monkeypatch.setenv("MNEMO_DATA", str(tmp_path / "mirror-root"))
    sums = readers_path._faces_mat(tmp_path / "hosts")
    monkeypatch.setattr(olivetti, "FACES", type(olivetti.FACES)(
        filename=olivetti.FACES.filename, url=olivetti.FACES.url, checksum=sums["faces"]))
    with readers_path.serve(tmp_path / "hosts") as url:
        monkeypatch.setenv("MNEMO_DOWNLOAD_URL", url)
        got = data_mod.load_faces(root=tmp_path / "root", mirror=tmp_path / "no-mirror", download=True)
    orl = data_mod.load_faces(root=tmp_path / "mirror-root", mirror=MIRROR, download=False)
    assert got.source == "download" and "Olivetti" in got.notes["format"]
    assert got.identity() == orl.identity()
    # scikit-learn scales the bytes to [0, 1] by their minimum and maximum; the .mat holds
    # bytes, so at most half a byte step of rounding remains
    both = [(orl.x_train * 255).round(), (orl.x_test * 255).round()]
    low, high = min(float(t.min()) for t in both), max(float(t.max()) for t in both)
    for mine, theirs in zip(both, (got.x_train, got.x_test)):
        expected = (mine - low) / (high - low)
        assert float((theirs - expected).abs().max()) <= 1e-6
    assert (got.y_train == orl.y_train).all() and (got.y_test == orl.y_test).all()


def test_a_wrong_checksum_from_the_download_url_is_refused(tmp_path, monkeypatch):
    hosts = tmp_path / "hosts" / "mnist"
    hosts.mkdir(parents=True)
    for name in data_mod.MNIST_MD5:
        (hosts / f"{name}.gz").write_bytes(b"not the MNIST file")
    with readers_path.serve(tmp_path / "hosts") as url:
        monkeypatch.setenv("MNEMO_DOWNLOAD_URL", url)
        with pytest.raises(data_mod.DataNotFoundError, match="MNIST not found"):
            data_mod.load_mnist(root=tmp_path / "root", mirror=tmp_path / "no-mirror", download=True)


def test_the_chapters_results_are_shipped_in_the_package():
    names = shipped.result_names()
    for name in ("scaling.json", "scaling.png", "compare-mnist-quick.json", "compare-cifar10-quick.json",
                 "random-subset-mnist.json",
                 "bench-mnist-quick-quick-budget-class0.json", "bench-mnist-quick-full-budget-class0.json",
                 "robustness_mnist.json", "robustness_faces.json", "align_remedy.json"):
        assert name in names, name
    for name in names:
        if name.endswith(".json"):
            result = shipped.load_result(name)
            assert isinstance(result, dict) and result.get("command"), name  # each names its command
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"results/*.json", "results/*.png"' in pyproject  # in the wheel


def test_shipped_results_refuse_bad_names():
    with pytest.raises(FileNotFoundError, match="no shipped result 'nope.json'.*scaling.json"):
        shipped.load_result("nope.json")
    with pytest.raises(ValueError, match="file name"):
        shipped.result_path("../pyproject.toml")
    with pytest.raises(ValueError, match=".json"):
        shipped.load_result("scaling.png")


def test_readers_path_names_chapters_by_number():
    assert [p.name[:2] for p in readers_path.chapters(["08", "01"])] == ["01", "08"]
    assert len(readers_path.chapters(None)) == 9
    with pytest.raises(SystemExit, match="no chapter 42"):
        readers_path.chapters(["42"])
