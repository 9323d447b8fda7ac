"""Models: the paper's MNIST MLP (more architectures register themselves in ``MODELS``)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class MLP(nn.Module):
    """The paper's MNIST classifier: flatten -> Linear(784, 1000) -> sigmoid -> Linear(1000, 10).

    Input (B, 1, 28, 28) (or any shape with ``in_features`` elements per sample) -> logits (B, C).
    """

    def __init__(self, in_features: int = 784, hidden: int = 1000, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, hidden)."""
        return torch.sigmoid(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
}


def make_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """Build the model ``name`` (one of ``MODELS``) for ``num_classes`` classes."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(sorted(MODELS))}; got {name!r}")
    return MODELS[name](num_classes=num_classes, **kwargs)
