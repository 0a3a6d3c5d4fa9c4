"""What every connector offers the model: tokens in, tokens out, and the output grid rule."""

from __future__ import annotations

import torch
from torch import nn


class Connector(nn.Module):
    """Maps encoder tokens (N, h·w, in_dim) on an h×w grid to LLM-width tokens.

    ``merge`` (k: k×k neighbours become one token) and ``fixed_grid`` (the output grid is
    always this, whatever the input) describe the output grid for the token accounting.
    """

    merge: int = 1
    fixed_grid: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError
