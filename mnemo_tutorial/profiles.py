"""Named training settings per dataset: ``quick`` (CPU, minutes), ``standard`` (one GPU),
``paper`` (the exact settings of Yamashita et al., ACML 2024).

The profile is picked by the ``MNEMO_PROFILE`` environment variable; without it,
``standard`` where CUDA is available and ``quick`` elsewhere.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import torch

PROFILE_NAMES = ("quick", "standard", "paper")


@dataclass(frozen=True)
class Profile:
    """Every setting that changes the trained weights (the checkpoint key hashes them all)."""

    name: str
    dataset: str
    model: str
    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "none"  # "none" or "cosine"
    t_mix: float = 0.1
    code_dist: str = "uniform"  # "uniform" (the authors' code) or "normal" (the paper's text)
    augment: bool = False  # random crop (pad 4) + horizontal flip, CIFAR-10 only
    paper_lambdas: tuple[float, float] = (1e-3, 10.0)
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Profile":
        """A copy with some settings changed (e.g. ``epochs``)."""
        return dataclasses.replace(self, **changes)

    def key_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (used for the checkpoint key and JSON reports)."""
        d = dataclasses.asdict(self)
        d["paper_lambdas"] = list(self.paper_lambdas)
        # settings of forgetting and of the CLI's sweep do not change the trained weights
        d["extra"] = {k: v for k, v in self.extra.items() if k not in ("forget_kwargs", "sweep_classes")}
        return d


_PROFILES: dict[tuple[str, str], Profile] = {
    # AdamW reaches ~98 % test accuracy with the sigmoid MLP in 15 CPU epochs (under a minute).
    # Its decoupled weight decay keeps the codes from being memorised with a confidence that
    # rounds to one-hot, which keeps their Fisher information informative (see the MNIST chapter).
    ("mnist", "quick"): Profile(
        name="quick", dataset="mnist", model="mlp", epochs=15, batch_size=128,
        optimizer="adamw", lr=3e-3, momentum=0.0, weight_decay=0.1, schedule="cosine",
        t_mix=0.1,
    ),
    ("mnist", "standard"): Profile(
        name="standard", dataset="mnist", model="mlp", epochs=40, batch_size=128,
        optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.1,
    ),
    # The paper: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128, 200 epochs.
    ("mnist", "paper"): Profile(
        name="paper", dataset="mnist", model="mlp", epochs=200, batch_size=128,
        optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="none",
        t_mix=0.1,
    ),
}


def register_profile(profile: Profile) -> None:
    """Add (or replace) the profile ``profile.name`` for ``profile.dataset``."""
    _PROFILES[(profile.dataset, profile.name)] = profile


def datasets_with_profiles() -> list[str]:
    """Dataset names that have at least one profile."""
    return sorted({d for d, _ in _PROFILES})


def default_profile_name() -> str:
    """``MNEMO_PROFILE`` if set, else ``standard`` with CUDA and ``quick`` without."""
    name = os.environ.get("MNEMO_PROFILE")
    if name:
        if name not in PROFILE_NAMES:
            raise ValueError(f"MNEMO_PROFILE must be one of {', '.join(PROFILE_NAMES)}; got {name!r}")
        return name
    return "standard" if torch.cuda.is_available() else "quick"


def get_profile(dataset: str, name: str | None = None) -> Profile:
    """The profile ``name`` (default: :func:`default_profile_name`) for ``dataset``."""
    name = name or default_profile_name()
    if name not in PROFILE_NAMES:
        raise ValueError(f"profile must be one of {', '.join(PROFILE_NAMES)}; got {name!r}")
    try:
        return _PROFILES[(dataset, name)]
    except KeyError:
        raise ValueError(
            f"dataset must be one of {', '.join(datasets_with_profiles())}; got {dataset!r}"
        ) from None


# ---------------------------------------------------------------------------------------
# CIFAR-10 and faces
# ---------------------------------------------------------------------------------------
# The paper's CIFAR-10 values of (lambda1, lambda2).
CIFAR10_PAPER_LAMBDAS = (1e-5, 1e4)
# People forgotten one at a time by the faces chapter and `sweep --dataset faces`: s1, s8, s15, s22, s29.
FACES_SWEEP = [0, 7, 14, 21, 28]
# On these convolutional models the one-shot step forgets a class without hurting the others
# only when it moves the classifier head (see the CIFAR-10 chapter); the CLI applies it there.
HEAD_ONLY = {"params": ["fc.weight", "fc.bias"]}

for _profile in (
    # CPU, a few minutes: a small ResNet (CIFAR stem, four stages of one basic block, 16-128
    # channels, 0.3 M parameters) for 5 epochs on all 50,000 training images with the paper's
    # augmentation; about 72 % test accuracy.
    Profile(
        name="quick", dataset="cifar10", model="small_resnet", epochs=5, batch_size=128,
        optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.3, augment=True, paper_lambdas=CIFAR10_PAPER_LAMBDAS,
        extra={"model_kwargs": {"widths": [16, 32, 64, 128], "blocks": [1, 1, 1, 1]},
               "sweep_classes": list(range(10)), "forget_kwargs": HEAD_ONLY},
    ),
    # One GPU: the paper's ResNet-18 with a 10x larger learning rate for 30 epochs.
    Profile(
        name="standard", dataset="cifar10", model="resnet18", epochs=30, batch_size=128,
        optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.3, augment=True, paper_lambdas=CIFAR10_PAPER_LAMBDAS,
        extra={"sweep_classes": list(range(10)), "forget_kwargs": HEAD_ONLY},
    ),
    # The paper: ResNet-18 (CIFAR stem), SGD lr 0.01, momentum 0.9, weight decay 5e-4,
    # batch 128, 200 epochs, cosine schedule, random crop + flip, t_mix 0.3.
    Profile(
        name="paper", dataset="cifar10", model="resnet18", epochs=200, batch_size=128,
        optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.3, augment=True, paper_lambdas=CIFAR10_PAPER_LAMBDAS,
        extra={"sweep_classes": list(range(10)), "forget_kwargs": HEAD_ONLY},
    ),
    # Faces (280 training images): the small face CNN, the paper's optimiser settings with
    # batch 32, 200 epochs (well under a minute on a CPU); about 99 % test accuracy.
    Profile(
        name="quick", dataset="faces", model="face_cnn", epochs=200, batch_size=32,
        optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.3, augment=True, paper_lambdas=CIFAR10_PAPER_LAMBDAS,
        extra={"sweep_classes": list(FACES_SWEEP), "forget_kwargs": HEAD_ONLY},
    ),
    # One GPU: a face CNN with twice the channels, 300 epochs.
    Profile(
        name="standard", dataset="faces", model="face_cnn", epochs=300, batch_size=32,
        optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.3, augment=True, paper_lambdas=CIFAR10_PAPER_LAMBDAS,
        extra={"model_kwargs": {"widths": [32, 64, 128, 256]}, "sweep_classes": list(FACES_SWEEP),
               "forget_kwargs": HEAD_ONLY},
    ),
    # The paper has no face experiment: its CIFAR-10 settings (batch 128 included) on faces.
    Profile(
        name="paper", dataset="faces", model="face_cnn", epochs=200, batch_size=128,
        optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="cosine",
        t_mix=0.3, augment=True, paper_lambdas=CIFAR10_PAPER_LAMBDAS,
        extra={"sweep_classes": list(FACES_SWEEP), "forget_kwargs": HEAD_ONLY},
    ),
):
    register_profile(_profile)
del _profile
