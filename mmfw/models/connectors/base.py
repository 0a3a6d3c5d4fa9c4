"""What every connector offers the model: tokens in, tokens out, and the output grid rule."""

from __future__ import annotations

import math

import torch
from hydra.utils import get_class
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


def mlp(in_dim: int, out_dim: int, depth: int, activation: str) -> nn.Sequential:
    """``depth`` Linear layers (in → out → out ...) with ``activation`` (a class path) between."""
    if depth < 1:
        raise ValueError(f"connector depth={depth} must be at least 1")
    act = get_class(activation)
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    for _ in range(depth - 1):
        layers += [act(), nn.Linear(out_dim, out_dim)]
    return nn.Sequential(*layers)


def square_grid(num_queries: int) -> tuple[int, int]:
    """The (side, side) grid of ``num_queries`` output tokens; it must be a perfect square."""
    side = math.isqrt(num_queries)
    if side * side != num_queries:
        raise ValueError(f"connector.num_queries={num_queries} must be a perfect square (e.g. 144)")
    return side, side
