"""How image embeddings enter the LLM."""

from __future__ import annotations

import torch
from torch import nn


class Fusion(nn.Module):
    # Whether several samples may share one packed row (data.packing=true).
    supports_packing = True

    """Fusion interface.

    ``placeholders_per_image`` is ``"layout"`` when every image embedding occupies one
    sequence position (inline), ``"maps"`` for one placeholder per token map of the layout
    (hyper attention, where the features reach the LLM another way), or an int.
    """

    placeholders_per_image: str | int = "layout"

    def attach(self, model) -> None:
        """Called once by the model that owns this fusion (e.g. to patch LLM layers)."""

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_parts: list[list[torch.Tensor]],
        layouts: list,
        image_token_id: int,
    ) -> tuple[torch.Tensor, dict]:
        """The LLM's ``inputs_embeds`` and extra keyword arguments for its forward.

        ``image_parts[i]`` holds image i's embeddings part by part (``layouts[i].parts``).
        """
        raise NotImplementedError
