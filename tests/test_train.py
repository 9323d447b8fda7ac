import pytest
import torch

from mnemo_tutorial.data import ImageData
from mnemo_tutorial.profiles import Profile, get_profile, register_profile
from mnemo_tutorial.train import checkpoint_key, train_or_load


def tiny_data(n=120, dim=(1, 4, 4), classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    centers = torch.rand(classes, *dim, generator=g)
    x = (centers[y] + 0.05 * torch.randn(n, *dim, generator=g)).clamp(0, 1)
    return ImageData("tiny", x, y, x[:30], y[:30], [str(c) for c in range(classes)])


def tiny_profile(**kw):
    base = Profile(name="quick", dataset="tiny", model="mlp", epochs=2, batch_size=32, optimizer="adam",
                   lr=1e-2, momentum=0.0, weight_decay=0.0, schedule="cosine", t_mix=0.2,
                   extra={"model_kwargs": {"in_features": 16, "hidden": 8}})
    return base.replace(**kw)


def test_cache_round_trip_and_key(tmp_path):
    data = tiny_data()
    prof = tiny_profile()
    first = train_or_load(prof, data, seed=1, root=tmp_path, progress=False)
    assert not first.from_cache and first.checkpoint.exists()
    assert len(first.history) == 2 and first.train_seconds > 0
    again = train_or_load(prof, data, seed=1, root=tmp_path, progress=False)
    assert again.from_cache and again.train_seconds == first.train_seconds
    assert torch.equal(again.codes.codes, first.codes.codes)
    for (k, a), (_, b) in zip(first.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), k
    keys = {checkpoint_key(prof, 1, data), checkpoint_key(prof, 2, data),
            checkpoint_key(prof.replace(epochs=3), 1, data), checkpoint_key(prof.replace(t_mix=0.3), 1, data),
            checkpoint_key(prof.replace(lr=0.1), 1, data)}
    assert len(keys) == 5
    assert not list(tmp_path.rglob("*.tmp"))


def test_training_is_seeded(tmp_path):
    data = tiny_data()
    a = train_or_load(tiny_profile(), data, seed=3, root=tmp_path / "a", progress=False)
    b = train_or_load(tiny_profile(), data, seed=3, root=tmp_path / "b", progress=False)
    for (k, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), k


def test_bad_epochs_and_profiles():
    with pytest.raises(ValueError, match="epochs"):
        train_or_load(tiny_profile(epochs=0), tiny_data(), use_cache=False, progress=False)
    with pytest.raises(ValueError, match="profile"):
        get_profile("mnist", "fast")
    with pytest.raises(ValueError, match="dataset"):
        get_profile("imagenet", "quick")


def test_mnist_profiles_match_the_paper():
    paper = get_profile("mnist", "paper")
    assert (paper.optimizer, paper.lr, paper.momentum, paper.weight_decay, paper.batch_size, paper.epochs) == ("sgd", 0.01, 0.9, 5e-4, 128, 200)
    assert paper.t_mix == 0.1 and paper.paper_lambdas == (1e-3, 10.0) and paper.model == "mlp"
    assert get_profile("mnist", "quick").epochs <= 20
