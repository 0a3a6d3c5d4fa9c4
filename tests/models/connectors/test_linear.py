"""LinearConnector: a token-wise projection."""

from __future__ import annotations

import torch

from mmfw.models.connectors.linear import LinearConnector


def test_linear_projection():
    proj = LinearConnector(in_dim=8, out_dim=4)
    x = torch.randn(3, 6, 8)
    torch.testing.assert_close(proj(x, (2, 3)), x @ proj.proj.weight.T + proj.proj.bias)
