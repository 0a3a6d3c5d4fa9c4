"""Hugging Face vision towers (CLIPVisionModel, SiglipVisionModel, ...) as mmfw encoders."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch
from hydra.utils import get_class

from mmfw.models.encoders.base import VisionEncoder
from mmfw.models.hf_loading import (
    on_meta_device,
    plain,
    resolve_attn_implementation,
    resolve_dtype,
)


class HFVisionEncoder(VisionEncoder):
    """A ``transformers`` vision model; features from one hidden layer, CLS optionally dropped.

    Yaml keys:
      model_class: the transformers class, e.g. ``transformers.CLIPVisionModel`` or
        ``transformers.SiglipVisionModel``; its ``config_class`` builds ``config``.
      pretrained: local path or hub id of weights (``from_pretrained``); null builds a
        randomly initialised model from ``config``; or a pretraining recipe (a node with a
        ``_target_`` such as ``mmfw.training.encoder_pretraining.ScenePretraining``) that is
        called with ``model_class``, ``config``, ``image_mean`` and ``image_std`` and returns the
        folder it trained (cached).
      config: keyword arguments of the model config (ignored when ``pretrained`` is set).
      pretrained_overrides: config attributes to change when loading ``pretrained`` (e.g.
        ``vision_use_head: false`` drops SigLIP's unused pooling head).
      select_layer: index into ``hidden_states`` (-2 = penultimate layer, as LLaVA).
      drop_cls: drop the leading CLS token (CLIP has one; SigLIP has none: set false).
      image_mean, image_std: per-channel normalisation the weights were trained with.
      attn_implementation: sdpa | eager | flash_attention_2 (follows the trainer; sdpa where
        flash-attn cannot run).
      dtype: float32 | bfloat16 | float16.
      position_embedding: false zeroes the tower's position embeddings and keeps them frozen,
        so a patch token carries what it shows but not where it sits (a toy control for the
        layout studies: the LLM then learns a token's place only from its place in the
        sequence, newline embeddings or a global view). A pretraining recipe trains the tower
        that way too.
    """

    def __init__(
        self,
        *,
        model_class: str,
        pretrained: str | Callable[[str, dict], str] | None = None,
        config: dict[str, Any] | None = None,
        pretrained_overrides: dict[str, Any] | None = None,
        select_layer: int = -2,
        drop_cls: bool = True,
        image_mean: list[float],
        image_std: list[float],
        attn_implementation: str = "sdpa",
        dtype: str = "float32",
        position_embedding: bool = True,
    ) -> None:
        super().__init__(image_mean=image_mean, image_std=image_std)
        cls = get_class(model_class)
        torch_dtype = resolve_dtype(dtype, "encoder.dtype")
        attn_implementation = resolve_attn_implementation(
            attn_implementation, "encoder.attn_implementation"
        )
        if callable(pretrained):
            # Planning needs only shapes, which the config gives: no pretraining on meta.
            pretrained = (
                None
                if on_meta_device()
                else pretrained(
                    model_class,
                    plain(config),
                    list(image_mean),
                    list(image_std),
                    **({} if position_embedding else {"position_embedding": False}),
                )
            )
        if pretrained and on_meta_device():
            hf_config = cls.config_class.from_pretrained(pretrained, **plain(pretrained_overrides))
            self.model = cls._from_config(
                hf_config, attn_implementation=attn_implementation, dtype=torch_dtype
            )
        elif pretrained:
            self.model = cls.from_pretrained(
                pretrained,
                attn_implementation=attn_implementation,
                dtype=torch_dtype,
                **plain(pretrained_overrides),
            ).train()  # from_pretrained returns eval mode; the stage decides what trains
        else:
            hf_config = cls.config_class(**plain(config))
            self.model = cls._from_config(
                hf_config, attn_implementation=attn_implementation, dtype=torch_dtype
            )
        cfg = self.model.config
        self.out_dim = int(cfg.hidden_size)
        self.patch_size = int(cfg.patch_size)
        self.image_size = int(cfg.image_size)
        tower = getattr(self.model, "vision_model", self.model)
        self.has_cls = hasattr(tower.embeddings, "class_embedding")
        self.position_embedding = bool(position_embedding)
        if not self.position_embedding:
            drop_position_embedding(self.model)
        if drop_cls and not self.has_cls:
            raise ValueError(
                f"encoder.drop_cls=true but {cls.__name__} has no CLS token: set encoder.drop_cls=false"
            )
        self.drop_cls = drop_cls
        num_layers = int(cfg.num_hidden_layers)
        if not -(num_layers + 1) <= select_layer <= num_layers:
            raise ValueError(
                f"encoder.select_layer={select_layer} is outside the {num_layers + 1} hidden states"
            )
        self.select_layer = select_layer

    def unused_parameters(self) -> set[str]:
        # hidden_states[i] is the output of layer i-1 (index 0: the embeddings), before the
        # post-layernorm; layers from index i on and the post-layernorm do not contribute.
        count = int(self.model.config.num_hidden_layers)
        first_unused = self.select_layer % (count + 1)
        unused = set()
        for name, _ in self.named_parameters():
            if not self.position_embedding and ".embeddings.position_embedding." in name:
                unused.add(name)  # held at zero: never trained
                continue
            match = re.search(r"\.layers\.(\d+)\.", name)
            if (match and int(match.group(1)) >= first_unused) or ".post_layernorm." in name:
                unused.add(name)
        return unused

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        interpolate = tuple(x.shape[-2:]) != (self.image_size, self.image_size)
        out = self.model(
            pixel_values=x, output_hidden_states=True, interpolate_pos_encoding=interpolate
        )
        feats = out.hidden_states[self.select_layer]
        return feats[:, 1:] if (self.has_cls and self.drop_cls) else feats


def drop_position_embedding(model: torch.nn.Module) -> None:
    """Zero a transformers vision tower's position embeddings and freeze them (CLIP, SigLIP
    and their kin keep them in ``embeddings.position_embedding``)."""
    tower = getattr(model, "vision_model", model)
    table = getattr(getattr(tower, "embeddings", None), "position_embedding", None)
    if not isinstance(table, torch.nn.Embedding):
        raise ValueError(
            f"encoder.position_embedding=false: {type(model).__name__} keeps no "
            "embeddings.position_embedding table to remove; set it true for this tower"
        )
    with torch.no_grad():
        table.weight.zero_()
    table.weight.requires_grad_(False)
