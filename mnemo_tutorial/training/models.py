"""Models: the paper's MNIST MLP, the CIFAR-stem ResNets (ResNet-18 as in the paper, and a
small one for CPUs) and a small face CNN; :func:`make_model` builds them by name from ``MODELS``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "FACES_MEAN",
    "FACES_STD",
    "MLP",
    "MODELS",
    "BasicBlock",
    "CifarResNet",
    "FaceCNN",
    "make_model",
    "Normalize",
    "resnet18",
    "small_resnet",
]


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


# ---------------------------------------------------------------------------------------
# Convolutional models for CIFAR-10 and faces
# ---------------------------------------------------------------------------------------
# Per-channel mean and standard deviation of the CIFAR-10 training images (pixels in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# The faces are normalised with round, dataset-independent constants rather than measured
# statistics: (x - 0.5) / 0.25 maps [0, 1] to [-2, 2], centred on mid-grey. The ORL training
# faces at 64x64 have mean 0.43 and standard deviation 0.19, which this maps to mean -0.26 and
# standard deviation 0.77 (instead of 0 and 1); the exact values matter little because a
# BatchNorm layer follows the first convolution, and the codes (uniform in [0, 1]) get the same
# mapping.
FACES_MEAN = 0.5
FACES_STD = 0.25


class Normalize(nn.Module):
    """(x - mean) / std per channel, with mean and std stored as buffers (not trained).

    Keeping the normalisation inside the model lets datasets and mnemonic codes stay raw
    images in [0, 1]. x (B, C, H, W) -> (B, C, H, W)."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BasicBlock(nn.Module):
    """The ResNet basic block (He et al., 2016): two 3x3 conv-BN layers and a shortcut
    (a 1x1 conv-BN when the shape changes).
    (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem: a 3x3 stride-1 conv, no max-pool, then stages of basic
    blocks (the first stage keeps the resolution, each later one halves it), global average
    pooling and a linear classifier.

    ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is ResNet-18 as the paper uses it.
    ``head="avg"`` (ResNet's global average pooling) or ``"flatten"`` (the last feature map
    flattened, which keeps where a pattern sits; ``image_size`` is then needed to size the
    linear layer). Input (B, in_channels, H, W) in [0, 1] (normalised inside when
    ``normalize``) -> logits (B, C).
    """

    def __init__(
        self,
        num_classes: int = 10,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        in_channels: int = 3,
        normalize: bool = True,
        mean: tuple[float, ...] = CIFAR10_MEAN,
        std: tuple[float, ...] = CIFAR10_STD,
        head: str = "avg",
        image_size: int = 32,
    ):
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(
                "widths and blocks must be non-empty and of equal length; "
                f"got {widths!r} and {blocks!r}"
            )
        if head not in ("avg", "flatten"):
            raise ValueError(f"head must be 'avg' or 'flatten'; got {head!r}")
        self.head = head
        self.norm: nn.Module = Normalize(mean, std) if normalize else nn.Identity()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        c_in = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(c_in, w, stride=2 if (i > 0 and j == 0) else 1))
                c_in = w
        self.layers = nn.Sequential(*layers)
        side = -(
            -int(image_size) // 2 ** (len(widths) - 1)
        )  # each later stage halves (rounding up)
        self.num_features = c_in if head == "avg" else c_in * side * side
        self.fc = nn.Linear(self.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, num_features): the last stage averaged over positions
        (``head="avg"``, B x widths[-1]) or flattened (``head="flatten"``)."""
        out = self.layers(self.stem(self.norm(x)))
        if self.head == "avg":
            out = nn.functional.adaptive_avg_pool2d(out, 1)
        return torch.flatten(out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def resnet18(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-18 with the CIFAR stem (the paper's CIFAR-10 model, about 11.2 M parameters)."""
    return CifarResNet(
        num_classes=num_classes, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), **kwargs
    )


def small_resnet(
    num_classes: int = 10,
    widths: tuple[int, ...] = (16, 32, 64),
    blocks: tuple[int, ...] = (1, 1, 1),
    **kwargs,
) -> CifarResNet:
    """A small ResNet with the CIFAR stem for CPU training (the ``quick`` CIFAR-10 profile)."""
    return CifarResNet(
        num_classes=num_classes, widths=tuple(widths), blocks=tuple(blocks), **kwargs
    )


class FaceCNN(nn.Module):
    """A small CNN for 1 x 64 x 64 grey faces: conv-BN-ReLU stages, each followed by 2x2
    max-pooling (64 -> 32 -> 16 -> 8 -> 4 with four stages), then the last feature map is
    averaged over positions (``head="avg"``, default) or flattened (``head="flatten"``),
    dropout and a linear layer. Input (B, 1, H, W) in [0, 1] -> logits (B, num_classes).

    With the flattened head the network can memorise each noise-like mnemonic code by where
    its pixels sit, apart from the features of the real faces, and forgetting the code then
    no longer forgets the person; with the averaged head, codes and faces share the features.
    """

    def __init__(
        self,
        num_classes: int = 40,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        in_channels: int = 1,
        dropout: float = 0.2,
        normalize: bool = True,
        head: str = "avg",
        image_size: int = 64,
    ):
        super().__init__()
        if head not in ("flatten", "avg"):
            raise ValueError(f"head must be 'flatten' or 'avg'; got {head!r}")
        self.head = head
        self.norm: nn.Module = (
            Normalize((FACES_MEAN,) * in_channels, (FACES_STD,) * in_channels)
            if normalize
            else nn.Identity()
        )
        layers: list[nn.Module] = []
        c_in = in_channels
        side = int(image_size)
        for w in widths:
            layers += [
                nn.Conv2d(c_in, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = w
            side //= 2
        if side < 1:
            raise ValueError(
                f"image_size must be at least 2 ** len(widths) = {2 ** len(widths)}; "
                f"got {image_size!r}"
            )
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.num_features = c_in * side * side if head == "flatten" else c_in
        self.fc = nn.Linear(self.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, num_features): the flattened (or averaged) last feature map."""
        h = self.body(self.norm(x))
        if self.head == "avg":
            h = nn.functional.adaptive_avg_pool2d(h, 1)
        return torch.flatten(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


# ---------------------------------------------------------------------------------------
# The registry the profiles name their models from
# ---------------------------------------------------------------------------------------
MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "resnet18": resnet18,
    "small_resnet": small_resnet,
    "face_cnn": FaceCNN,
}


def make_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """Build the model ``name`` (one of ``MODELS``) for ``num_classes`` classes; ``kwargs``
    go to its constructor (e.g. ``widths``). Register another model by adding it to ``MODELS``."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(sorted(MODELS))}; got {name!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    return MODELS[name](num_classes=num_classes, **kwargs)
