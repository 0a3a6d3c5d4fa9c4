"""Fuyu's "no encoder": every pixel patch goes through one Linear straight to the LLM width."""

from __future__ import annotations

import torch
from torch import nn

from mmfw.models.encoders.base import VisionEncoder


class PatchLinearEncoder(VisionEncoder):
    """Cuts views into ``patch_size`` squares, flattens each in (row, column, channel) order
    (30·30·3 = 2700 values for Fuyu) and applies one Linear to ``out_dim``.

    ``out_dim`` is wired to the LLM's hidden size (use ``connector=identity``); tokens come
    in raster order. Yaml keys:
      patch_size: patch side in pixels (Fuyu: 30).
      image_mean, image_std: per-channel normalisation (Fuyu: 0.5, 0.5).
    """

    def __init__(
        self, *, out_dim: int, patch_size: int = 30, image_mean: list[float], image_std: list[float]
    ) -> None:
        super().__init__(image_mean=image_mean, image_std=image_std)
        self.patch_size = int(patch_size)
        self.out_dim = int(out_dim)
        self.proj = nn.Linear(3 * self.patch_size**2, self.out_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.patch_size
        patches = x.view(n, c, h // p, p, w // p, p).permute(
            0, 2, 4, 3, 5, 1
        )  # n, rows, cols, ph, pw, c
        return self.proj(patches.reshape(n, (h // p) * (w // p), p * p * c))
