"""k×k token merge ("pixel shuffle"): concatenate neighbours along channels, then an MLP (IXC)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mmfw.models.connectors.base import Connector, mlp


class TokenMergeConnector(Connector):
    """Merges every ``factor × factor`` window of the token grid into one token whose channels
    are the window's tokens concatenated (row-major), then maps it with an MLP.

    IXC2-4KHD: factor 2 turns 24×24×1024 CLIP tokens into 12×12×4096. Grids whose sides are
    not multiples of ``factor`` are zero-padded at the bottom/right.

    Yaml keys:
      factor: the window side k (compression k²).
      depth: Linear layers of the MLP after merging (1 = a single projection).
      activation: class path of the MLP's activation, e.g. ``torch.nn.GELU``.
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        factor: int = 2,
        depth: int = 2,
        activation: str = "torch.nn.GELU",
    ) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"connector.factor={factor} must be >= 1")
        self.merge = int(factor)
        self.mlp = mlp(in_dim * factor * factor, out_dim, depth, activation)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        n, _, c = x.shape
        h, w = grid
        k = self.merge
        maps = x.view(n, h, w, c)
        pad_h, pad_w = (-h) % k, (-w) % k
        if pad_h or pad_w:
            maps = F.pad(maps, (0, 0, 0, pad_w, 0, pad_h))
        hh, ww = (h + pad_h) // k, (w + pad_w) // k
        merged = (
            maps.view(n, hh, k, ww, k, c).permute(0, 1, 3, 2, 4, 5).reshape(n, hh * ww, k * k * c)
        )
        return self.mlp(merged)
