"""LLaVA-1.5's MLP projector: Linear → act → Linear (``mlp2x_gelu``), any depth."""

from __future__ import annotations

import torch
from hydra.utils import get_class
from torch import nn

from mmfw.models.connectors.base import Connector


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
        if depth < 1:
            raise ValueError(f"connector.depth={depth} must be at least 1")
        act = get_class(activation)
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        for _ in range(depth - 1):
            layers += [act(), nn.Linear(out_dim, out_dim)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return self.mlp(x)
