"""No connector: the encoder already outputs the LLM's width (Fuyu's patch projection)."""

from __future__ import annotations

import torch

from mmfw.models.connectors.base import Connector


class IdentityConnector(Connector):
    """Passes tokens through; the encoder width must equal the LLM width. No yaml keys."""

    def __init__(self, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim != out_dim:
            raise ValueError(
                f"connector=identity needs the encoder width ({in_dim}) to equal the LLM width "
                f"({out_dim}); choose another connector or an encoder wired to the LLM width"
            )

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return x
