"""ResamplerConnector: a square grid of learnable queries, any input size."""

from __future__ import annotations

import pytest
import torch

from mmfw.models.connectors.resampler import ResamplerConnector, sincos_2d


@pytest.mark.parametrize("grid", [(24, 24), (48, 48), (3, 7)])
def test_fixed_output_grid(grid):
    conn = ResamplerConnector(in_dim=16, out_dim=32, num_queries=144, heads=4)
    assert conn(torch.randn(2, grid[0] * grid[1], 16), grid).shape == (2, 144, 32)
    assert conn.fixed_grid == (12, 12)


def test_queries_see_the_tokens_and_positions():
    conn = ResamplerConnector(in_dim=8, out_dim=8, num_queries=4, heads=2)
    x = torch.randn(1, 9, 8)
    assert not torch.allclose(conn(x, (3, 3)), conn(x.flip(1), (3, 3)))
    emb = sincos_2d(3, 3, 8)
    assert emb.shape == (9, 8) and not torch.allclose(emb[0], emb[1])
