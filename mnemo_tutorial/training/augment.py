"""Batched training augmentation on tensors (no per-image Python loop)."""

from __future__ import annotations

import torch

__all__ = [
    "random_crop_flip",
]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """The paper's CIFAR-10 augmentation: random crop with zero padding ``padding``, then a
    random horizontal flip, each drawn per image from ``generator`` (a CPU generator).
    x: (B, C, H, W) on any device -> (B, C, H, W), a new tensor; ``x`` is not modified.

    Used for CIFAR-10 (32x32, as in the paper) and the faces (64x64) by their profiles."""
    if x.dim() != 4:
        raise ValueError(f"x must be a (B, C, H, W) batch; got shape {tuple(x.shape)}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer; got {padding!r}")
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # (B, W)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_b = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
