"""How image embeddings enter the LLM."""

from __future__ import annotations

import torch
from torch import nn


class Fusion(nn.Module):
    """Fusion interface.

    ``placeholders_per_image`` is ``"layout"`` when every image embedding occupies one
    sequence position (inline), or an int (e.g. 1 for hyper-attention, where the features
    reach the LLM another way).
    """

    placeholders_per_image: str | int = "layout"

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        input_ids: torch.Tensor,
        image_embeds: list[torch.Tensor],
        image_token_id: int,
    ) -> tuple[torch.Tensor, dict]:
        """Returns the LLM's ``inputs_embeds`` and extra keyword arguments for its forward."""
        raise NotImplementedError
