"""Mnemonic codes (Shibata et al., IJCAI 2021; Yamashita et al., ACML 2024).

One random image per class, drawn once from a fixed seed and stored with the model.
While training, each sample is swapped for its class's code with probability ``t_mix``;
at forgetting time the codes stand in for the training data when the Fisher information
is computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = [
    "CODE_DISTRIBUTIONS",
    "CodeMixDataset",
    "MnemonicCodes",
]

CODE_DISTRIBUTIONS = ("uniform", "normal")


@dataclass
class MnemonicCodes:
    """``codes``: (C, *input_shape) float tensor, one code per class; class c's code is
    ``codes[c]``."""

    codes: torch.Tensor
    distribution: str = "uniform"
    seed: int = 0
    # where the codes sit in the model they trained (core.alignment.CodeAlignment), recorded
    # while the training data was at hand; None when nobody measured it
    alignment: Any = None

    @classmethod
    def random(
        cls,
        num_classes: int,
        shape: Sequence[int],
        seed: int = 0,
        distribution: str = "uniform",
    ) -> MnemonicCodes:
        """Draw ``num_classes`` codes of ``shape`` from U[0, 1) or N(0, 1), seeded.

        The same seed gives bit-identical codes on every machine (a CPU generator is used).
        """
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
        if distribution not in CODE_DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {', '.join(CODE_DISTRIBUTIONS)}; got {distribution!r}"
            )
        gen = torch.Generator().manual_seed(int(seed))
        size = (int(num_classes), *[int(s) for s in shape])
        if distribution == "uniform":
            codes = torch.rand(size, generator=gen)
        else:
            codes = torch.randn(size, generator=gen)
        return cls(codes=codes, distribution=distribution, seed=int(seed))

    @property
    def num_classes(self) -> int:
        return int(self.codes.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape[1:])

    def labels(self) -> torch.Tensor:
        """(C,) int64 tensor ``[0, 1, ..., C-1]``: the class of each code."""
        return torch.arange(self.num_classes)

    def to(self, device: torch.device | str) -> MnemonicCodes:
        return MnemonicCodes(self.codes.to(device), self.distribution, self.seed, self.alignment)

    def with_alignment(self, alignment: Any) -> MnemonicCodes:
        """These codes with ``alignment`` (a
        :class:`~mnemo_tutorial.core.alignment.CodeAlignment`, e.g. from
        :func:`~mnemo_tutorial.core.alignment.measure_alignment`) recorded, for ``forget``."""
        from mnemo_tutorial.core.alignment import CodeAlignment

        if not isinstance(alignment, CodeAlignment) or len(alignment.cosine) != self.num_classes:
            raise ValueError(
                f"alignment must be a CodeAlignment of {self.num_classes} classes "
                "(measure_alignment(model, codes.codes, x, y)); "
                f"got {type(alignment).__name__}"
            )
        return MnemonicCodes(self.codes, self.distribution, self.seed, alignment)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild the codes (and their alignment record)."""
        state = {"codes": self.codes.cpu(), "distribution": self.distribution, "seed": self.seed}
        if self.alignment is not None:
            state["alignment"] = self.alignment.to_dict()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> MnemonicCodes:
        from mnemo_tutorial.core.alignment import CodeAlignment

        record = state.get("alignment")
        return cls(
            codes=state["codes"],
            distribution=state["distribution"],
            seed=int(state["seed"]),
            alignment=None if record is None else CodeAlignment.from_dict(record),
        )

    def mix_batch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        t_mix: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Swap each sample of a batch for its class's code with probability ``t_mix``.

        x: (B, *input_shape), y: (B,) -> (x', mask) with x' a new tensor and mask (B,) bool
        telling which samples were swapped.
        """
        _check_t_mix(t_mix)
        draw = torch.rand(x.shape[0], generator=generator)
        mask = (draw < t_mix).to(x.device)
        out = x.clone()
        if mask.any():
            out[mask] = self.codes.to(device=x.device, dtype=x.dtype)[y[mask]]
        return out, mask

    def mix_into(self, dataset: Dataset, t_mix: float, seed: int = 0) -> CodeMixDataset:
        """Wrap ``dataset`` so that each item is swapped for its class's code with probability
        ``t_mix``."""
        return CodeMixDataset(dataset, self, t_mix, seed)


def _check_t_mix(t_mix: float) -> None:
    if not 0.0 <= float(t_mix) <= 1.0:
        raise ValueError(f"t_mix must be a probability in [0, 1]; got {t_mix!r}")


def _item_seed(*numbers: int) -> int:
    """A 63-bit seed from integers, the same on every platform and Python (BLAKE2b of their
    decimal text; Python's ``hash`` is an implementation detail)."""
    text = ",".join(str(int(n)) for n in numbers).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


class CodeMixDataset(Dataset):
    """A dataset whose item ``i`` is, with probability ``t_mix``, replaced by its class's code.

    The per-item alternative to :meth:`MnemonicCodes.mix_batch` (which the training loop uses)
    for pipelines built on ``torch.utils.data.DataLoader``.

    The draw for item ``i`` depends on ``(seed, epoch, i)`` only, so a run is reproducible
    whatever the loader's order or worker count; call :meth:`set_epoch` to draw afresh.
    Codes are returned as they are: no augmentation, no normalisation.
    """

    def __init__(self, dataset: Dataset, codes: MnemonicCodes, t_mix: float, seed: int = 0):
        _check_t_mix(t_mix)
        self.dataset = dataset
        self.codes = codes
        self.t_mix = float(t_mix)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def is_code(self, index: int) -> bool:
        """Whether item ``index`` is swapped for its code in the current epoch."""
        gen = torch.Generator().manual_seed(_item_seed(self.seed, self.epoch, int(index)))
        return bool(torch.rand(1, generator=gen).item() < self.t_mix)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.dataset[index]
        if self.is_code(index):
            x = self.codes.codes[int(y)].clone()
        return x, int(y)
