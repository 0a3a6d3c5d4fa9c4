"""Any Hugging Face causal LM, built from a config (tiny / random) or loaded from weights."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from mmfw.models.hf_loading import (
    on_meta_device,
    plain,
    resolve_attn_implementation,
    resolve_dtype,
)


def build_causal_lm(
    *,
    vocab_size: int | None,
    pretrained: str | None = None,
    model_type: str = "llama",
    config: dict[str, Any] | None = None,
    attn_implementation: str = "sdpa",
    dtype: str = "float32",
    trust_remote_code: bool = False,
) -> PreTrainedModel:
    """An ``AutoModelForCausalLM``.

    Yaml keys:
      pretrained: local path or hub id; null builds from ``model_type`` + ``config``.
      model_type: a transformers model type (llama, qwen2, internlm2 via remote code,
        persimmon, ...), used only without ``pretrained``.
      config: keyword arguments of that model's config (hidden_size, num_hidden_layers, ...).
      attn_implementation: sdpa (CPU and GPU) | eager | flash_attention_2 (GPU, needs the
        ``gpu`` extra; falls back to sdpa with a warning where it cannot run). The yamls
        follow ``trainer.attn_implementation``.
      dtype: float32 | bfloat16 | float16.
      trust_remote_code: allow the checkpoint's own Python code (off unless you trust it).

    ``vocab_size`` is wired from the tokenizer: a model built from config gets the tokenizer's
    size (or ``config.vocab_size`` where that is larger); a pretrained model is resized when the tokenizer gained tokens. Without a
    tokenizer (planning) it is None and ``config.vocab_size`` (the published size) is used.
    Under ``torch.device("meta")`` a pretrained model is built from its config alone.
    """
    torch_dtype = resolve_dtype(dtype, "llm.dtype")
    attn_implementation = resolve_attn_implementation(
        attn_implementation, "llm.attn_implementation"
    )
    if pretrained and on_meta_device():
        hf_config = AutoConfig.from_pretrained(pretrained, trust_remote_code=trust_remote_code)
        if vocab_size and vocab_size > hf_config.vocab_size:
            hf_config.vocab_size = vocab_size
        return AutoModelForCausalLM.from_config(
            hf_config,
            attn_implementation=attn_implementation,
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
        )
    if pretrained:
        model = AutoModelForCausalLM.from_pretrained(
            pretrained,
            attn_implementation=attn_implementation,
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
        )
        if model.get_input_embeddings().num_embeddings < vocab_size:
            model.resize_token_embeddings(vocab_size)
        return model
    kwargs = plain(config)
    if vocab_size is not None:
        # At least the tokenizer's size; a larger config.vocab_size (llava-hf pads 32002 rows
        # to 32064) is kept.
        kwargs["vocab_size"] = max(int(vocab_size), int(kwargs.get("vocab_size") or 0))
    elif "vocab_size" not in kwargs:
        raise ValueError("llm.config.vocab_size is needed to build the LLM without a tokenizer")
    hf_config = AutoConfig.for_model(model_type, **kwargs)
    return AutoModelForCausalLM.from_config(
        hf_config,
        attn_implementation=attn_implementation,
        dtype=torch_dtype,
        trust_remote_code=trust_remote_code,
    )
