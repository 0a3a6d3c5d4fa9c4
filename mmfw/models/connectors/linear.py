"""A single linear projection (LLaVA-1.0)."""

from __future__ import annotations

import torch
from torch import nn

from mmfw.models.connectors.base import Connector


class LinearConnector(Connector):
    """Linear(in_dim → out_dim), token-wise. No yaml keys beyond the wired dimensions."""

    def __init__(self, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return self.proj(x)
