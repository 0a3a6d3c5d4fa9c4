"""TokenMergeConnector: 2x2 neighbours concatenated along channels (IXC's order)."""

from __future__ import annotations

import torch

from mmfw.models.connectors.token_merge import TokenMergeConnector


def test_merge_concatenates_each_window_row_major():
    conn = TokenMergeConnector(in_dim=1, out_dim=4, factor=2, depth=1)
    with torch.no_grad():
        conn.mlp[0].weight.copy_(torch.eye(4))
        conn.mlp[0].bias.zero_()
    x = torch.arange(16, dtype=torch.float32).view(1, 16, 1)  # a 4x4 grid holding 0..15
    out = conn(x, (4, 4))
    assert out.shape == (1, 4, 4) and conn.merge == 2
    assert out[0, 0].tolist() == [0, 1, 4, 5] and out[0, 1].tolist() == [2, 3, 6, 7]
    assert out[0, 3].tolist() == [10, 11, 14, 15]


def test_odd_grids_are_padded_and_ixc_shape():
    conn = TokenMergeConnector(in_dim=8, out_dim=16)
    assert conn(torch.randn(2, 5 * 3, 8), (5, 3)).shape == (2, 3 * 2, 16)
    with torch.device("meta"):
        ixc = TokenMergeConnector(in_dim=1024, out_dim=4096, factor=2, depth=2)
    assert ixc(torch.empty(1, 576, 1024, device="meta"), (24, 24)).shape == (1, 144, 4096)
