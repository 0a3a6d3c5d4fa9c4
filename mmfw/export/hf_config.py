"""The ``LlavaConfig`` / ``LlavaNextConfig`` of an export, from the live mmfw model."""

from __future__ import annotations

from mmfw.export.hf_support import HFArchitecture
from mmfw.models.vlm import VisionLanguageModel


def hf_config(arch: HFArchitecture, model: VisionLanguageModel, tokenizer, dtype: str):
    """Vision and text configs are the parts' own; the rest says how mmfw wired them."""
    from transformers import LlavaConfig, LlavaNextConfig

    vision = model.encoder.model.config.to_dict()
    vision["image_size"] = arch.image_size  # position embeddings are baked to this size
    text = model.llm.config.to_dict()
    for name in ("bos", "eos", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id")
        if token_id is not None:
            text[f"{name}_token_id"] = int(token_id)
    grid = arch.image_size // int(model.encoder.patch_size)
    common = {
        "vision_config": vision,
        "text_config": text,
        "image_token_index": int(model.image_token_id),
        "projector_hidden_act": arch.projector_act,
        "vision_feature_layer": arch.feature_layer,
        "vision_feature_select_strategy": arch.select_strategy,
        "multimodal_projector_bias": True,
        "tie_word_embeddings": bool(getattr(model.llm.config, "tie_word_embeddings", False)),
        "dtype": dtype,
    }
    if arch.format == "hf_llava_next":
        return LlavaNextConfig(image_grid_pinpoints=arch.pinpoints, **common)
    extra = 1 if arch.select_strategy == "full" and arch.has_cls else 0
    return LlavaConfig(image_seq_length=grid * grid + extra, **common)
