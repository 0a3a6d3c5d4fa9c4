"""IdentityConnector: passes tokens through, refuses mismatched widths."""

from __future__ import annotations

import pytest
import torch

from mmfw.models.connectors.identity import IdentityConnector


def test_identity():
    x = torch.randn(2, 3, 8)
    assert IdentityConnector(in_dim=8, out_dim=8)(x, (1, 3)) is x
    with pytest.raises(ValueError, match="connector=identity"):
        IdentityConnector(in_dim=8, out_dim=16)
