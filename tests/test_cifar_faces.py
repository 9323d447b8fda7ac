"""CIFAR-10 and faces: loaders on small files written here, models, profiles, the training and
forgetting path of the convolutional models on a tiny synthetic problem (the command line's
checks are in test_cli.py)."""
import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import forget
from mnemo_tutorial.core.step import head_params
from mnemo_tutorial.evaluation.metrics import evaluate
from mnemo_tutorial.training import data as data_mod
from mnemo_tutorial.training.augment import random_crop_flip
from mnemo_tutorial.training.data import (
    CIFAR10_CLASSES,
    ChecksumError,
    DataNotFoundError,
    load_cifar10,
    load_dataset,
    load_faces,
)
from mnemo_tutorial.training.loop import train_model
from mnemo_tutorial.training.models import CifarResNet, FaceCNN, make_model
from mnemo_tutorial.training.profiles import PROFILE_NAMES, get_profile, get_settings


# ----------------------------------------------------------------------------- test files
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tar(src_dir: Path, top: str, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_dir / top, arcname=top)
    return archive


def cifar_mirror(tmp_path: Path, per_class=(2, 1), classes=CIFAR10_CLASSES):
    """A tiny ``cifar10-jpeg/{train,test}/<class>/NNNN.jpg`` tree packed as the mirror's archive.
    Image i of class c is a flat colour that encodes (c, i), so labels and order can be checked."""
    src = tmp_path / "src"
    originals = {}
    for split, n in zip(("train", "test"), per_class):
        imgs = []
        for c, name in enumerate(classes):
            folder = src / "cifar10-jpeg" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                colour = np.array([20 * c + 10, 100 + 50 * i, 200], dtype=np.uint8)
                arr = np.broadcast_to(colour, (32, 32, 3)).copy()
                Image.fromarray(arr).save(folder / f"{i:04d}.jpg", quality=95)
                imgs.append(arr)
        originals[split] = np.stack(imgs)
    archive = make_tar(src, "cifar10-jpeg", tmp_path / "mirror" / "cifar10-jpeg.tar.gz")
    return archive, originals


def faces_mirror(tmp_path: Path, drop: str | None = None, shape=(14, 12)):
    """A tiny ``att_faces/s<p>/<n>.pgm`` tree (40 people x 10 images, flat grey images whose
    level encodes (person, image)) packed as the mirror's archive."""
    src = tmp_path / "src"
    for p in range(1, 41):
        folder = src / "att_faces" / f"s{p}"
        folder.mkdir(parents=True)
        for n in range(1, 11):
            if drop == f"s{p}/{n}.pgm":
                continue
            Image.fromarray(np.full(shape, face_level(p - 1, n - 1), dtype=np.uint8)).save(folder / f"{n}.pgm")
    (src / "att_faces" / "README").write_text("Olivetti Research Laboratory\n")
    return make_tar(src, "att_faces", tmp_path / "mirror" / "att_faces.tar.gz")


def face_level(person: int, image: int) -> int:
    return (person * 10 + image) % 251


# ----------------------------------------------------------------------------- CIFAR-10 loader
def test_cifar10_from_mirror_decodes_once_then_reads_the_cache(tmp_path, monkeypatch):
    archive, originals = cifar_mirror(tmp_path)
    root = tmp_path / "root"
    d = load_cifar10(root=root, mirror=archive.parent, download=False, checksums={archive.name: sha256(archive)})
    assert d.source == "mirror" and d.name == "cifar10" and d.classes == CIFAR10_CLASSES
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (10, 3, 32, 32)
    assert d.x_train.dtype == torch.float32 and 0.0 <= float(d.x_train.min()) and float(d.x_train.max()) <= 1.0
    assert d.y_train.tolist() == [c for c in range(10) for _ in range(2)] and d.y_test.tolist() == list(range(10))
    back = (d.x_train.permute(0, 2, 3, 1) * 255).numpy()
    assert np.abs(back - originals["train"]).mean() < 3.0  # JPEG is lossy, a flat colour nearly exact
    assert "JPEG" in d.notes["format"]
    cache = root / "cifar10-jpeg" / "cifar10-jpeg-uint8.pt"
    assert cache.exists() and torch.load(cache, weights_only=True)["x_train"].dtype == torch.uint8
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folders left

    def no_decoding(*args, **kwargs):
        raise AssertionError("the JPEG files were decoded a second time")

    monkeypatch.setattr(data_mod, "_decode_image_folder", no_decoding)
    again = load_cifar10(root=root, mirror=None, download=False)
    assert again.source == "root" and torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)


def test_cifar10_checksum_mismatch_extracts_nothing(tmp_path):
    archive, _ = cifar_mirror(tmp_path)
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match="cifar10-jpeg.tar.gz.*expected 0{64}"):
        load_cifar10(root=root, mirror=archive.parent, download=False, checksums={archive.name: "0" * 64})
    assert not (root / "cifar10-jpeg").exists()
    assert not root.exists() or not any(root.iterdir())


def test_cifar10_default_checksum_rejects_a_fake_archive(tmp_path):
    archive, _ = cifar_mirror(tmp_path)
    with pytest.raises(ChecksumError, match=data_mod.MIRROR_SHA256["cifar10-jpeg.tar.gz"]):
        load_cifar10(root=tmp_path / "root", mirror=archive.parent, download=False)


def test_cifar10_wrong_class_folders_are_refused(tmp_path):
    wrong = [*CIFAR10_CLASSES[:-1], "zebra"]
    archive, _ = cifar_mirror(tmp_path, classes=wrong)
    with pytest.raises(ValueError, match="airplane.*truck.*found.*zebra"):
        load_cifar10(root=tmp_path / "root", mirror=archive.parent, download=False, checksums={archive.name: sha256(archive)})


def test_cifar10_images_of_the_wrong_size_are_refused(tmp_path):
    root = tmp_path / "root"
    for split in ("train", "test"):
        for name in CIFAR10_CLASSES:
            (root / "cifar10-jpeg" / split / name).mkdir(parents=True)
            Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(root / "cifar10-jpeg" / split / name / "0000.jpg")
    with pytest.raises(ValueError, match="32x32"):
        load_cifar10(root=root, mirror=None, download=False)


def test_cifar10_missing_everywhere_names_the_archive(tmp_path):
    with pytest.raises(DataNotFoundError, match="cifar10-jpeg.tar.gz.*MNEMO_MIRROR.*cifar-10-batches-py.*download disabled"):
        load_cifar10(root=tmp_path / "root", mirror=tmp_path / "empty", download=False)


# ----------------------------------------------------------------------------- faces loader
def test_faces_from_mirror_split_labels_and_size(tmp_path):
    archive = faces_mirror(tmp_path)
    root = tmp_path / "root"
    d = load_faces(root=root, mirror=archive.parent, download=False, checksums={archive.name: sha256(archive)})
    assert d.source == "mirror" and d.num_classes == 40 and d.classes[0] == "s1" and d.classes[-1] == "s40"
    assert d.x_train.shape == (280, 1, 64, 64) and d.x_test.shape == (120, 1, 64, 64)
    assert d.y_train.tolist() == [p for p in range(40) for _ in range(7)]
    assert d.y_test.tolist() == [p for p in range(40) for _ in range(3)]
    # images 1-7 of each person train, 8-10 test, in order (flat images keep their level)
    levels_train = (d.x_train.mean((1, 2, 3)) * 255).round().long().tolist()
    levels_test = (d.x_test.mean((1, 2, 3)) * 255).round().long().tolist()
    assert levels_train == [face_level(p, n) for p in range(40) for n in range(7)]
    assert levels_test == [face_level(p, n) for p in range(40) for n in range(7, 10)]
    assert "split" in d.notes and "1-7" in d.notes["split"]
    again = load_faces(root=root, mirror=None, download=False)
    assert again.source == "root" and torch.equal(again.x_test, d.x_test)
    assert load_faces(root=root, mirror=None, download=False, size=32).x_train.shape == (280, 1, 32, 32)


def test_faces_checksum_mismatch_and_missing_image(tmp_path):
    archive = faces_mirror(tmp_path)
    with pytest.raises(ChecksumError, match="att_faces.tar.gz"):
        load_faces(root=tmp_path / "root", mirror=archive.parent, download=False)  # the mirror README's value
    assert not (tmp_path / "root" / "att_faces").exists()
    holey = faces_mirror(tmp_path / "holey", drop="s7/9.pgm")
    with pytest.raises(DataNotFoundError, match="s7.9.pgm is missing"):
        load_faces(root=tmp_path / "root2", mirror=holey.parent, download=False, checksums={holey.name: sha256(holey)})


def test_faces_download_path_gives_the_same_layout(tmp_path, monkeypatch):
    """scikit-learn's Olivetti copy (64x64, person-major) -> the same split and shapes."""
    import sklearn.datasets

    calls = []

    def fake_fetch(data_home=None, shuffle=False, download_if_missing=True, **kw):
        calls.append(download_if_missing)
        home = Path(data_home)
        if not (home / "olivetti_py3.pkz").exists():
            if not download_if_missing:
                raise OSError("not downloaded")
            home.mkdir(parents=True, exist_ok=True)
            (home / "olivetti_py3.pkz").write_bytes(b"")  # where scikit-learn caches it
        images = np.stack([np.full((64, 64), face_level(i // 10, i % 10) / 255.0, dtype=np.float32) for i in range(400)])
        from sklearn.utils import Bunch

        return Bunch(images=images, target=np.arange(400) // 10)

    monkeypatch.setattr(sklearn.datasets, "fetch_olivetti_faces", fake_fetch)
    d = load_faces(root=tmp_path / "root", mirror=tmp_path / "empty", download=True)
    assert calls == [True, False] and d.source == "download"  # downloaded once, then read from the root
    assert d.x_train.shape == (280, 1, 64, 64) and d.x_test.shape == (120, 1, 64, 64)
    levels_test = (d.x_test.mean((1, 2, 3)) * 255).round().long().tolist()
    assert levels_test == [face_level(p, n) for p in range(40) for n in range(7, 10)]
    assert "Olivetti" in d.notes["format"]


def test_faces_missing_everywhere_and_bad_size(tmp_path):
    with pytest.raises(DataNotFoundError, match="att_faces.tar.gz.*MNEMO_MIRROR.*download disabled"):
        load_faces(root=tmp_path / "root", mirror=tmp_path / "empty", download=False)
    with pytest.raises(ValueError, match="size"):
        load_faces(root=tmp_path / "root", size=4)


def test_loaders_are_registered():
    assert data_mod.LOADERS["cifar10"] is load_cifar10 and data_mod.LOADERS["faces"] is load_faces
    with pytest.raises(ValueError, match="dataset must be one of.*cifar10.*faces"):
        load_dataset("svhn")


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name, kwargs, shape, classes, n_params, n_features", [
    ("resnet18", {}, (3, 32, 32), 10, 11_173_962, 512),
    ("small_resnet", {}, (3, 32, 32), 10, 78_042, 64),
    ("small_resnet", {"widths": (16, 32, 64, 128), "blocks": (1, 1, 1, 1)}, (3, 32, 32), 10, 308_826, 128),
    ("small_resnet", {"widths": (16, 32, 64, 128), "blocks": (1, 1, 1, 1), "head": "flatten"}, (3, 32, 32), 10, 328_026, 2048),
    ("face_cnn", {}, (1, 64, 64), 40, 102_552, 128),
    ("face_cnn", {"head": "flatten"}, (1, 64, 64), 40, 179_352, 2048),
    ("face_cnn", {"widths": (32, 64, 128, 256)}, (1, 64, 64), 40, 398_600, 256),
])
def test_model_shapes_and_sizes(name, kwargs, shape, classes, n_params, n_features):
    model = make_model(name, num_classes=classes, **kwargs).eval()
    x = torch.rand(2, *shape)
    assert model(x).shape == (2, classes)
    assert model.features(x).shape == (2, n_features)
    assert sum(p.numel() for p in model.parameters()) == n_params


def test_model_bad_arguments():
    with pytest.raises(ValueError, match="head"):
        CifarResNet(head="max")
    with pytest.raises(ValueError, match="widths and blocks"):
        CifarResNet(widths=(8, 16), blocks=(1,))
    with pytest.raises(ValueError, match="head"):
        FaceCNN(head="max")
    with pytest.raises(ValueError, match="model must be one of.*face_cnn.*resnet18.*small_resnet"):
        make_model("vgg")


def test_normalisation_lives_in_the_model():
    """Raw [0, 1] inputs go in; the normalisation buffers are saved with the weights, not trained."""
    model = make_model("small_resnet")
    names = dict(model.named_buffers())
    assert "norm.mean" in names and "norm.std" in names
    assert not any(n.startswith("norm.") for n, _ in model.named_parameters())


@pytest.mark.parametrize("name, shape", [("small_resnet", (3, 32, 32)), ("face_cnn", (1, 64, 64))])
def test_models_run_under_bfloat16_autocast(name, shape):
    """The GPU path trains under bfloat16 autocast; the same autocast on CPU must work."""
    model = make_model(name, num_classes=5)
    x, y = torch.rand(4, *shape), torch.arange(4) % 5
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ----------------------------------------------------------------------------- profiles
def test_conv_profiles_build_their_models_and_move_the_head():
    for ds, classes in (("cifar10", 10), ("faces", 40)):
        for name in PROFILE_NAMES:
            settings = get_settings(ds, name)
            prof = settings.train
            assert prof.dataset == ds and prof.name == name and prof.schedule == "cosine"
            model = make_model(prof.model, num_classes=classes, **prof.model_options())
            assert settings.forget.params == "head"
            assert head_params(model) == ("fc.weight", "fc.bias")
            assert all(0 <= c < classes for c in settings.sweep.class_list(classes))
    paper = get_profile("cifar10", "paper")
    assert (paper.model, paper.optimizer, paper.lr, paper.momentum, paper.weight_decay, paper.batch_size, paper.epochs) == (
        "resnet18", "sgd", 0.01, 0.9, 5e-4, 128, 200)
    assert paper.t_mix == 0.3 and paper.augment and get_settings("cifar10", "paper").forget.paper_lambdas == (1e-5, 1e4)
    assert get_profile("cifar10", "standard").model == "resnet18"
    assert len(get_settings("faces", "quick").sweep.class_list(40)) >= 5


# ----------------------------------------------------------------------------- train + forget
def test_conv_models_train_and_forget_on_a_tiny_problem():
    """The CIFAR path (batch norm, augmentation, cosine schedule, codes) end to end on CPU with a
    tiny residual network: 4 classes of 3x8x8 images, each class a distinct colour pattern."""
    g = torch.Generator().manual_seed(0)
    protos = torch.rand(4, 3, 8, 8, generator=g)
    y = torch.arange(160) % 4
    x = (protos[y] + 0.05 * torch.randn(160, 3, 8, 8, generator=g)).clamp(0, 1)
    prof = get_profile("cifar10", "quick").replace(
        epochs=12, batch_size=32, lr=0.05, t_mix=0.3, model_kwargs={"widths": (8, 16), "blocks": (1, 1)})
    model = make_model("small_resnet", num_classes=4, widths=(8, 16), blocks=(1, 1))
    codes = MnemonicCodes.random(4, (3, 8, 8), seed=0)
    res = train_model(model, x, y, codes, prof, seed=0, device="cpu", augment=random_crop_flip, progress=False)
    assert len(res.history) == 12 and not res.model.training
    before = evaluate(res.model, x, y, [1], 4)
    assert before["accuracy"] >= 90.0
    state = {k: v.clone() for k, v in res.model.state_dict().items()}
    out = forget(res.model, codes, [1])
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, state[k]), k  # the trained model is left as it was
    assert all(p.grad is None for p in res.model.parameters())
    after = evaluate(out.model, x, y, [1], 4)
    assert after["E_F"] >= 90.0 and after["A_R"] >= before["A_R"] - 10.0
    assert out.report.forget == [1] and out.report.status == "ok"
