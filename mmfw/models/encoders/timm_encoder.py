"""Any timm vision transformer as an encoder (no download unless asked for)."""

from __future__ import annotations

from typing import Any

import timm
import torch

from mmfw.models.encoders.base import VisionEncoder


class TimmEncoder(VisionEncoder):
    """``timm.create_model(model_name, **model_kwargs)``; tokens of one block, prefix dropped.

    Yaml keys:
      model_name: a timm model name (a ViT-like model with ``forward_intermediates``).
      pretrained: null/false for random init; true downloads timm's weights (needs network);
        a file path loads a local checkpoint.
      model_kwargs: extra ``create_model`` arguments (img_size, patch_size, embed_dim, depth...).
      select_layer: block whose output is used; negative counts from the end like
        ``hidden_states`` (-1 = last block, -2 = penultimate).
      image_mean, image_std: per-channel normalisation.
    """

    def __init__(
        self,
        *,
        model_name: str,
        pretrained: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        select_layer: int = -1,
        image_mean: list[float],
        image_std: list[float],
    ) -> None:
        super().__init__(image_mean=image_mean, image_std=image_std)
        kwargs = dict(model_kwargs or {})
        if isinstance(pretrained, str):
            kwargs["pretrained_cfg_overlay"] = {"file": pretrained}
        self.model = timm.create_model(
            model_name, pretrained=bool(pretrained), num_classes=0, **kwargs
        )
        if not hasattr(self.model, "forward_intermediates"):
            raise ValueError(f"encoder.model_name={model_name!r} has no forward_intermediates")
        depth = len(self.model.blocks)
        index = select_layer if select_layer >= 0 else depth + select_layer
        if not 0 <= index < depth:
            raise ValueError(f"encoder.select_layer={select_layer} outside the {depth} blocks")
        self.block_index = index
        self.out_dim = int(self.model.embed_dim)
        patch = self.model.patch_embed.patch_size
        self.patch_size = int(patch[0] if isinstance(patch, tuple | list) else patch)
        img = self.model.patch_embed.img_size
        self.image_size = int(img[0] if isinstance(img, tuple | list) else img)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_intermediates(
            x, indices=[self.block_index], norm=False, output_fmt="NLC", intermediates_only=True
        )
        return feats[0]
