"""Named settings per dataset, split by purpose.

* :class:`TrainConfig`: how any model is trained with codes (the recipe alone);
  :class:`Profile`: a registered recipe, i.e. a TrainConfig plus the data set and model,
  everything that changes the trained weights (the checkpoint key hashes
  :meth:`Profile.key_dict`).
* :class:`~mnemo_tutorial.core.settings.ForgetSettings`: how the one-shot step is applied to
  that model (the paper's lambdas, which tensors may move, the selection).
* :class:`SweepSettings`: which classes ``sweep`` forgets one at a time.

:class:`Settings` bundles the three. Built-in names per dataset: ``quick`` (CPU, minutes),
``standard`` (one GPU) and ``paper`` (the settings of Yamashita et al., ACML 2024); any name
given to :func:`register_profile` can be fetched with :func:`get_profile` / :func:`get_settings`.

This module reads no environment variable and does not import torch: the default profile
name (``MNEMO_PROFILE``, else ``quick``) is chosen at the edges by
:func:`mnemo_tutorial.env.profile_name`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mnemo_tutorial.checks import check_choice
from mnemo_tutorial.core.settings import ForgetSettings

__all__ = [
    "CIFAR10_PAPER_LAMBDAS",
    "CODE_DISTRIBUTIONS",
    "MNIST_PAPER_LAMBDAS",
    "OPTIMIZERS",
    "PROFILE_NAMES",
    "SCHEDULES",
    "datasets_with_profiles",
    "forget_settings",
    "get_profile",
    "get_settings",
    "Profile",
    "profile_names",
    "register_profile",
    "Settings",
    "SweepSettings",
    "TrainConfig",
]

# (lambda1, lambda2) of the paper (Yamashita et al., ACML 2024), MNIST and CIFAR-10 experiments.
MNIST_PAPER_LAMBDAS: tuple[float, float] = (1e-3, 10.0)
CIFAR10_PAPER_LAMBDAS: tuple[float, float] = (1e-5, 1e4)
# The built-in names every dataset has (custom names may be registered too).
PROFILE_NAMES = ("quick", "standard", "paper")

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine")
CODE_DISTRIBUTIONS = ("uniform", "normal")


def _frozen(value: Any) -> Any:
    """Lists (also nested) as tuples, so that a setting is hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """Tuples (also nested) as lists, for JSON."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained with mnemonic codes (hashable, immutable): the recipe alone, for
    any model, e.g. ``train_model(my_model, x, y, codes, TrainConfig(epochs=5))``."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd", "adam" or "adamw" (torch.optim)
    lr: float = 0.01
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    schedule: str = "none"  # "none" or "cosine" (per step, down to 0 at the last step)
    t_mix: float = 0.1  # probability that a training sample is swapped for its class's code
    code_dist: str = "uniform"  # "uniform" (the authors' code) or "normal" (the paper's text)
    augment: bool = (
        False  # random crop (zero padding 4) + horizontal flip (augment.random_crop_flip)
    )

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not 0.0 <= float(self.t_mix) <= 1.0:
            raise ValueError(f"t_mix must be a probability in [0, 1]; got {self.t_mix!r}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("code_dist", self.code_dist, CODE_DISTRIBUTIONS)

    def replace(self, **changes: Any) -> Any:
        """A copy with some settings changed (e.g. ``epochs``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for a progress bar or a log."""
        return f"{self.epochs} epochs, {self.optimizer} lr {self.lr:g}, t_mix {self.t_mix:g}"


@dataclass(frozen=True, kw_only=True)
class Profile(TrainConfig):
    """A registered recipe: a :class:`TrainConfig` plus the data set and model it is for and
    the name it is registered under. Every field changes the trained weights, and nothing
    else is in it (the checkpoint key hashes exactly :meth:`key_dict`).

    ``model_kwargs`` are the keyword arguments of ``make_model(model, ...)`` as a tuple of
    ``(key, value)`` pairs; a dict is accepted and stored sorted as such pairs.
    """

    name: str
    dataset: str
    model: str
    model_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        pairs = dict(self.model_kwargs).items()  # a dict or (key, value) pairs
        frozen = tuple(sorted((str(k), _frozen(v)) for k, v in pairs))
        object.__setattr__(self, "model_kwargs", frozen)
        super().__post_init__()

    def model_options(self) -> dict[str, Any]:
        """``model_kwargs`` as a dict for
        ``make_model(profile.model, **profile.model_options())``."""
        return dict(self.model_kwargs)

    def key_dict(self) -> dict[str, Any]:
        """The settings as a plain JSON-able dict (what the checkpoint key hashes)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model_kwargs"] = {k: _plain(v) for k, v in self.model_kwargs}
        return d

    def describe(self) -> str:
        return f"{self.dataset}/{self.name}: {super().describe()}"


@dataclass(frozen=True)
class SweepSettings:
    """The classes ``sweep`` forgets one at a time (empty: every class of the dataset)."""

    classes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        classes = tuple(int(c) for c in self.classes)
        if any(c < 0 for c in classes):
            raise ValueError(f"classes must be non-negative class indices; got {self.classes!r}")
        object.__setattr__(self, "classes", classes)

    def class_list(self, num_classes: int) -> list[int]:
        """The classes to sweep for a dataset of ``num_classes`` classes."""
        if any(c >= num_classes for c in self.classes):
            raise ValueError(
                f"classes must be below num_classes={num_classes}; got {self.classes!r}"
            )
        return list(self.classes) if self.classes else list(range(num_classes))


@dataclass(frozen=True)
class Settings:
    """Everything registered under one (dataset, name): training, forgetting and sweep settings."""

    train: Profile
    forget: ForgetSettings = field(default_factory=ForgetSettings)
    sweep: SweepSettings = field(default_factory=SweepSettings)


_SETTINGS: dict[tuple[str, str], Settings] = {}


def register_profile(
    profile: Profile, forget: ForgetSettings | None = None, sweep: SweepSettings | None = None
) -> Settings:
    """Add (or replace) ``profile.name`` for ``profile.dataset``, with its forgetting settings
    (default ``ForgetSettings()``: MNIST's paper lambdas, params "auto", data-free selection)
    and sweep settings (default: every class). Returns the registered :class:`Settings`."""
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a Profile; got {type(profile).__name__}")
    settings = Settings(profile, forget or ForgetSettings(), sweep or SweepSettings())
    _SETTINGS[(profile.dataset, profile.name)] = settings
    return settings


def datasets_with_profiles() -> list[str]:
    """Dataset names that have at least one profile."""
    return sorted({d for d, _ in _SETTINGS})


def profile_names(dataset: str | None = None) -> list[str]:
    """Registered profile names (of ``dataset``, or of any dataset)."""
    return sorted({n for d, n in _SETTINGS if dataset is None or d == dataset})


def get_settings(dataset: str, name: str) -> Settings:
    """The :class:`Settings` registered as ``name`` for ``dataset`` (any registered name)."""
    if dataset not in datasets_with_profiles():
        raise ValueError(
            f"dataset must be one of {', '.join(datasets_with_profiles())}; got {dataset!r}"
        )
    try:
        return _SETTINGS[(dataset, name)]
    except KeyError:
        raise ValueError(
            f"profile for {dataset} must be one of {', '.join(profile_names(dataset))}; "
            f"got {name!r}"
        ) from None


def get_profile(dataset: str, name: str) -> Profile:
    """The training :class:`Profile` registered as ``name`` for ``dataset``."""
    return get_settings(dataset, name).train


def forget_settings(dataset: str, name: str) -> ForgetSettings:
    """The :class:`ForgetSettings` registered as ``name`` for ``dataset``."""
    return get_settings(dataset, name).forget


# ---------------------------------------------------------------------------------------
# MNIST: the paper's MLP; the step moves every tensor.
# ---------------------------------------------------------------------------------------
# The paper: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128, 200 epochs, t_mix 0.1.
_MNIST_PAPER = Profile(
    name="paper",
    dataset="mnist",
    model="mlp",
    epochs=200,
    batch_size=128,
    optimizer="sgd",
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="none",
    t_mix=0.1,
)
_MNIST_FORGET = ForgetSettings(paper_lambdas=MNIST_PAPER_LAMBDAS, params="all")
_MNIST_SWEEP = SweepSettings(tuple(range(10)))
for _profile in (
    # AdamW reaches ~98 % test accuracy with the sigmoid MLP in 15 CPU epochs (under a minute).
    # Its decoupled weight decay keeps the codes from being memorised with a confidence that
    # rounds to one-hot, which keeps their Fisher information informative (see the MNIST chapter).
    _MNIST_PAPER.replace(
        name="quick",
        epochs=15,
        optimizer="adamw",
        lr=3e-3,
        momentum=0.0,
        weight_decay=0.1,
        schedule="cosine",
    ),
    # One GPU: SGD with a 10x larger learning rate and a cosine schedule, 40 epochs.
    _MNIST_PAPER.replace(name="standard", epochs=40, lr=0.1, schedule="cosine"),
    _MNIST_PAPER,
):
    register_profile(_profile, _MNIST_FORGET, _MNIST_SWEEP)

# ---------------------------------------------------------------------------------------
# CIFAR-10 and faces: convolutional models; the step moves the classifier head only.
# ---------------------------------------------------------------------------------------
# The paper: ResNet-18 (CIFAR stem), SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128,
# 200 epochs, cosine schedule, random crop + flip, t_mix 0.3.
_CIFAR_PAPER = Profile(
    name="paper",
    dataset="cifar10",
    model="resnet18",
    epochs=200,
    batch_size=128,
    optimizer="sgd",
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="cosine",
    t_mix=0.3,
    augment=True,
)
# On the convolutional models the one-shot step forgets a class without hurting the others
# only when it moves the classifier head (see the CIFAR-10 chapter).
_CONV_FORGET = ForgetSettings(paper_lambdas=CIFAR10_PAPER_LAMBDAS, params="head")
for _profile in (
    # CPU, a few minutes: a small ResNet (CIFAR stem, four stages of one basic block, 16-128
    # channels, 0.3 M parameters) for 5 epochs on all 50,000 training images; about 72 % accuracy.
    _CIFAR_PAPER.replace(
        name="quick",
        model="small_resnet",
        epochs=5,
        lr=0.1,
        model_kwargs=(("blocks", (1, 1, 1, 1)), ("widths", (16, 32, 64, 128))),
    ),
    # One GPU: the paper's ResNet-18 with a 10x larger learning rate for 30 epochs.
    _CIFAR_PAPER.replace(name="standard", epochs=30, lr=0.1),
    _CIFAR_PAPER,
):
    register_profile(_profile, _CONV_FORGET, SweepSettings(tuple(range(10))))

# Faces (280 training images of 40 people, 64x64): the paper has no face experiment, so its
# CIFAR-10 settings are used (the same crop + flip augmentation; the lambdas of CIFAR-10, the
# closest setting the paper tunes). People forgotten one at a time by the faces chapter and
# `sweep --dataset faces`: s1, s8, s15, s22, s29.
_FACES_PAPER = _CIFAR_PAPER.replace(dataset="faces", model="face_cnn")
_FACES_SWEEP = SweepSettings((0, 7, 14, 21, 28))
for _profile in (
    # The small face CNN with batch 32, 200 epochs (well under a minute on a CPU); ~99 % accuracy.
    _FACES_PAPER.replace(name="quick", batch_size=32),
    # One GPU: a face CNN with twice the channels, 300 epochs.
    _FACES_PAPER.replace(
        name="standard", epochs=300, batch_size=32, model_kwargs=(("widths", (32, 64, 128, 256)),)
    ),
    # The paper's CIFAR-10 settings (batch 128 included) on faces.
    _FACES_PAPER,
):
    register_profile(_profile, _CONV_FORGET, _FACES_SWEEP)
del _profile
