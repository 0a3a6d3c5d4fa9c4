"""LLaVA-1.5's MLP projector: Linear → act → Linear (``mlp2x_gelu``), any depth."""

from __future__ import annotations

import torch

from mmfw.models.connectors.base import Connector, mlp


class MLPConnector(Connector):
    """``depth`` linear layers with ``activation`` between them, token-wise.

    Yaml keys:
      depth: number of Linear layers (2 = LLaVA-1.5's ``mlp2x_gelu``).
      activation: class path of the activation module, e.g. ``torch.nn.GELU``.
    """

    def __init__(
        self, *, in_dim: int, out_dim: int, depth: int = 2, activation: str = "torch.nn.GELU"
    ) -> None:
        super().__init__()
        self.mlp = mlp(in_dim, out_dim, depth, activation)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return self.mlp(x)
