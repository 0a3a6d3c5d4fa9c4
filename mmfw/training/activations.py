"""Activation memory of one training micro-batch per device, for ``mmfw-plan``.

What backward keeps, counted per token and transformer layer from the config's widths
(``h`` hidden, ``h_kv`` key/value width, ``I`` MLP width), in elements:

- attention: the norm's input and output, q, k, v and the attention output:
  ``4h + 2 h_kv`` (flash/memory-efficient kernels keep no S x S matrix);
- MLP: the norm's input and output, then ``I`` per intermediate tensor (gate, up, their
  activation and product for a gated MLP: ``4I``; a plain one: ``2I``): ``2h + 4I`` or ``2h + 2I``.

A layer under gradient checkpointing keeps only its input (``h``) and one layer's full set is
live while it is recomputed. The LLM also keeps its logits, in the compute dtype and as the
float32 copy the loss reads: ``V x (a + 4)`` bytes per token. ``a`` is 2 bytes under 16-bit
precision, 4 otherwise. The vision tower is counted the same way over its views' patch
tokens, and only where something in or before it trains (a frozen tower with a frozen input
keeps nothing). The connector, fusion and framework buffers are not counted.

Per device: ``llm / context_parallel + encoder``: a context-parallel rank holds 1/N of every
row's tokens (its heads of the whole sequence inside attention are the same count of
elements), while each rank of the group encodes the micro-batch's images itself.
"""

from __future__ import annotations

from torch import nn


def _per_token_layer(hidden: int, kv: int, inner: int, gated: bool) -> int:
    return 4 * hidden + 2 * kv + 2 * hidden + (4 if gated else 2) * inner


def _stack(config, gated: bool) -> tuple[int, int, int]:
    """(layers, elements kept per token with all layers, with every layer checkpointed)."""
    h = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 1) or 1)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or (h // heads if heads else 0))
    inner = int(getattr(config, "intermediate_size", None) or 4 * h)
    per_layer = _per_token_layer(h, kv_heads * head_dim, inner, gated)
    return layers, layers * per_layer, layers * h + per_layer


def _gated(module: nn.Module) -> bool:
    return any(n.endswith(("gate_proj", "gate_up_proj", "w3")) for n, _ in module.named_modules())


def _trains(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def activation_memory(
    model,
    *,
    micro_batch: int,
    tokens_per_row: int,
    views: list[tuple[int, int]],
    precision: str,
    checkpointed: set[str],
    context_parallel: int = 1,
) -> dict:
    """Bytes kept for backward by one micro-batch of ``micro_batch`` rows of
    ``tokens_per_row`` tokens, each row with one image of ``views`` (count, patch tokens per
    view): ``llm`` (whole rows), ``encoder``, ``per_device`` and ``without_context_parallel``."""
    a = 2 if precision.startswith(("bf16", "16")) else 4
    tokens = micro_batch * tokens_per_row
    llm = model.llm
    llm_config = getattr(llm.config, "text_config", None) or llm.config
    _, full, ckpt = _stack(llm_config, _gated(llm))
    vocab = int(getattr(llm_config, "vocab_size", 0) or 0)
    encoder_trains = _trains(model.encoder)
    anything_trains = _trains(model)
    llm_bytes = 0
    if anything_trains:
        kept = ckpt if "llm" in checkpointed else full
        llm_bytes = tokens * (kept * a + vocab * (a + 4))
    encoder_bytes = 0
    inner = getattr(model.encoder, "model", None)
    enc_config = getattr(getattr(inner, "config", None), "vision_config", None) or getattr(
        inner, "config", None
    )
    if encoder_trains and views:
        patches = micro_batch * sum(count * per_view for count, per_view in views)
        if enc_config is not None:
            _, e_full, e_ckpt = _stack(enc_config, _gated(model.encoder))
            kept = e_ckpt if "encoder" in checkpointed else e_full
        else:  # a patch projection (Fuyu): its output only
            kept = int(getattr(model.encoder, "out_dim", 0) or 0)
        encoder_bytes = patches * kept * a
    n = max(1, int(context_parallel))
    return {
        "llm": int(llm_bytes),
        "encoder": int(encoder_bytes),
        "per_device": int(llm_bytes / n + encoder_bytes),
        "without_context_parallel": int(llm_bytes + encoder_bytes),
    }
