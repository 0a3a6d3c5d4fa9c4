"""MLPConnector (mlp2x_gelu): LLaVA-1.5's projector shape and parameter count."""

from __future__ import annotations

import torch
from torch import nn

from mmfw.models.connectors.mlp import MLPConnector


def test_llava15_7b_projector_has_20_979_712_parameters():
    with torch.device("meta"):
        proj = MLPConnector(in_dim=1024, out_dim=4096, depth=2, activation="torch.nn.GELU")
    assert sum(p.numel() for p in proj.parameters()) == 20_979_712
    assert [type(m) for m in proj.mlp] == [nn.Linear, nn.GELU, nn.Linear]


def test_tokenwise_output_shape_and_grid():
    proj = MLPConnector(in_dim=8, out_dim=16, depth=3)
    assert proj(torch.randn(2, 5, 8), (1, 5)).shape == (2, 5, 16)
    assert proj.merge == 1 and proj.fixed_grid is None
