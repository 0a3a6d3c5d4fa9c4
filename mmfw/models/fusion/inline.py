"""LLaVA-style fusion: image embeddings replace the placeholder positions of the sequence."""

from __future__ import annotations

import torch

from mmfw.models.fusion.base import Fusion


class InlineFusion(Fusion):
    """Scatter the images' embeddings, in order, into the image-placeholder positions. No keys."""

    placeholders_per_image = "layout"

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_parts: list[list[torch.Tensor]],
        layouts: list,
        image_token_id: int,
    ) -> tuple[torch.Tensor, dict]:
        image_embeds = [t for parts in image_parts for t in parts]
        mask = input_ids == image_token_id
        n_slots = int(mask.sum())
        n_embeds = sum(int(e.shape[0]) for e in image_embeds)
        if n_slots != n_embeds:
            raise ValueError(
                f"the batch has {n_slots} image placeholder tokens but the images produced "
                f"{n_embeds} embeddings; the data pipeline and the model disagree on the token count"
            )
        if n_slots == 0:
            return inputs_embeds, {}
        flat = torch.cat(image_embeds).to(inputs_embeds.dtype)
        out = inputs_embeds.masked_scatter(mask.unsqueeze(-1), flat)
        return out, {}
