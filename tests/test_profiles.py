import subprocess
import sys

import pytest
import torch

from mnemo_tutorial.core.settings import DataFree
from mnemo_tutorial.training.checkpoints import checkpoint_key, train_or_load
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.profiles import (
    CIFAR10_PAPER_LAMBDAS,
    MNIST_PAPER_LAMBDAS,
    ForgetSettings,
    Profile,
    Settings,
    SweepSettings,
    datasets_with_profiles,
    forget_settings,
    get_profile,
    get_settings,
    profile_names,
    register_profile,
)


@pytest.fixture(autouse=True)
def _registry_restored(monkeypatch):
    """Profiles registered by a test are gone after it (other tests see the built-in registry)."""
    from mnemo_tutorial.training import profiles

    monkeypatch.setattr(profiles, "_SETTINGS", dict(profiles._SETTINGS))


def tiny_data(n=60, classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    x = (torch.rand(classes, 1, 4, 4, generator=g)[y] + 0.05 * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1)
    return ImageData("tinyprof", x, y, x[:15], y[:15], [str(c) for c in range(classes)])


def tiny(name="tiny", **kw):
    return Profile(name=name, dataset="tinyprof", model="mlp", epochs=1, batch_size=16, optimizer="adam",
                   lr=1e-2, momentum=0.0, weight_decay=0.0, t_mix=0.2,
                   model_kwargs={"in_features": 16, "hidden": 8}, **kw)


def test_a_registered_custom_profile_is_fetched_keyed_and_trained(tmp_path):
    # before the fix, get_profile rejected every name but quick/standard/paper
    forget = ForgetSettings(paper_lambdas=(1e-4, 1.0), params=["fc2.weight"],
                            selection=DataFree(margin=4.0))
    registered = register_profile(tiny(), forget=forget, sweep=SweepSettings((0, 2)))
    assert get_profile("tinyprof", "tiny") == tiny()
    assert get_settings("tinyprof", "tiny") == registered == Settings(tiny(), forget, SweepSettings((0, 2)))
    fs = forget_settings("tinyprof", "tiny")
    assert (fs.paper_lambdas, fs.params, fs.selection) == ((1e-4, 1.0), ("fc2.weight",), DataFree(4.0))
    assert "tiny" in profile_names("tinyprof") and "tinyprof" in datasets_with_profiles()
    data = tiny_data()
    result = train_or_load(get_profile("tinyprof", "tiny"), data, root=tmp_path, progress=False)
    assert result.key == checkpoint_key(tiny(), 0, data) and result.key in result.checkpoint.name
    assert result.model.fc1.in_features == 16 and result.model.fc1.out_features == 8


def test_defaults_of_a_registration():
    settings = register_profile(tiny(name="plain"))
    assert settings.forget == ForgetSettings() and settings.forget.paper_lambdas == MNIST_PAPER_LAMBDAS
    assert settings.sweep.class_list(3) == [0, 1, 2]
    assert SweepSettings((0, 2)).class_list(3) == [0, 2]
    with pytest.raises(ValueError, match="classes"):
        SweepSettings((0, 5)).class_list(3)


def test_unknown_names_list_what_exists():
    with pytest.raises(ValueError, match=r"profile for mnist must be one of paper, quick, standard.*'fast'"):
        get_profile("mnist", "fast")
    with pytest.raises(ValueError, match=r"dataset must be one of .*cifar10, faces, mnist.*'imagenet'"):
        get_profile("imagenet", "quick")
    with pytest.raises(TypeError):
        get_profile("mnist")  # the name is required: the default is chosen at the edges (env.profile_name)


def test_profiles_are_hashable_and_immutable():
    p = get_profile("cifar10", "quick")
    assert hash(p) == hash(p.replace()) and {p: 1}[p.replace()] == 1
    assert p.model_options() == {"blocks": (1, 1, 1, 1), "widths": (16, 32, 64, 128)}
    assert tiny().model_kwargs == (("hidden", 8), ("in_features", 16))  # a dict is stored as sorted pairs
    assert tiny().replace(model_kwargs={"widths": [1, 2]}).model_kwargs == (("widths", (1, 2)),)  # lists frozen
    with pytest.raises(Exception):
        p.epochs = 3
    hash(get_settings("faces", "paper"))
    assert not hasattr(p, "extra") and not hasattr(p, "paper_lambdas")


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("t_mix", 1.5),
                                          ("optimizer", "rmsprop"), ("schedule", "step"), ("code_dist", "laplace")])
def test_bad_training_settings(field, value):
    with pytest.raises(ValueError, match=field):
        tiny().replace(**{field: value})


@pytest.mark.parametrize("kwargs, word", [(dict(paper_lambdas=(1e-3,)), "paper_lambdas"),
                                          (dict(paper_lambdas=(0, 1)), "paper_lambdas"),
                                          (dict(params="fc.weight"), "params"), (dict(params=[]), "params"),
                                          (dict(selection="data-free"), "selection"),
                                          (dict(fisher_dtype="float16"), "fisher_dtype"),
                                          (dict(sign=0), "sign")])
def test_bad_forget_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ForgetSettings(**kwargs)


def test_built_in_settings():
    paper = get_profile("mnist", "paper")
    assert (paper.optimizer, paper.lr, paper.momentum, paper.weight_decay, paper.batch_size, paper.epochs,
            paper.t_mix, paper.model) == ("sgd", 0.01, 0.9, 5e-4, 128, 200, 0.1, "mlp")
    assert get_profile("mnist", "quick").optimizer == "adamw"
    for name in ("quick", "standard", "paper"):
        assert forget_settings("mnist", name) == ForgetSettings(DataFree(8.0), "all", MNIST_PAPER_LAMBDAS)
        for ds in ("cifar10", "faces"):
            assert forget_settings(ds, name) == ForgetSettings(DataFree(8.0), "head", CIFAR10_PAPER_LAMBDAS)
            assert get_profile(ds, name).augment and get_profile(ds, name).t_mix == 0.3
        assert get_settings("faces", name).sweep.classes == (0, 7, 14, 21, 28)
        assert get_settings("cifar10", name).sweep.classes == tuple(range(10))


def test_forgetting_settings_are_not_training_settings():
    # the checkpoint key hashes Profile.key_dict(): no forgetting or sweep setting is in it
    keys = set(get_profile("cifar10", "quick").key_dict())
    assert keys.isdisjoint({"paper_lambdas", "params", "margin", "classes", "extra", "forget_kwargs"})


def test_import_does_not_load_torch():
    code = "import sys, mnemo_tutorial.training.profiles; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
