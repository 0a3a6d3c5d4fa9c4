"""CAbstractor: fixed 12x12 output grid, Honeybee's parameter count."""

from __future__ import annotations

import pytest
import torch

from mmfw.models.connectors.c_abstractor import CAbstractor


def test_clip_l_to_4096_has_the_published_size():
    with torch.device("meta"):
        conn = CAbstractor(in_dim=1024, out_dim=4096, in_grid=(24, 24), num_queries=144)
    # SPECS §3: "about 37.4M" for CLIP-L (576 tokens) → 4096
    assert sum(p.numel() for p in conn.parameters()) == 37_398_016


@pytest.mark.parametrize("grid", [(8, 8), (12, 12), (6, 10)])
def test_output_is_the_fixed_grid_for_any_input_grid(grid):
    conn = CAbstractor(
        in_dim=16, out_dim=24, in_grid=(8, 8), num_queries=16, depth=1, hidden_dim=32
    )
    out = conn(torch.randn(2, grid[0] * grid[1], 16), grid)
    assert out.shape == (2, 16, 24) and conn.fixed_grid == (4, 4)


def test_num_queries_must_be_square():
    with pytest.raises(ValueError, match="num_queries"):
        CAbstractor(in_dim=4, out_dim=4, in_grid=(2, 2), num_queries=10)
