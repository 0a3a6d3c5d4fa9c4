"""mPLUG-Owl3's Hyper Attention Transformer Blocks (HATB) for Llama- and Qwen2-family LLMs.

Image features do not enter the token sequence: each image (each token map of its layout)
holds one placeholder token, and selected decoder layers let the text attend to the image
features as extra keys/values:

- shared input norm: the layer's own ``input_layernorm`` normalises the image features;
- separate visual K/V: ``v_kv_proj`` = Linear(hidden → 2·n_kv·head_dim), laid out per KV
  head as [K_h | V_h] (the released checkpoint's layout); the text queries are shared;
- MI-RoPE: every visual key of image k is rotated with the rotary angle of image k's
  placeholder position; visual values are not rotated;
- media mask: a text query at sequence index i sees image k only if i >= the index of image
  k's placeholder (decode steps see every image of their sample);
- variant ``gated`` (mPLUG-Owl3-7B-240728): a separate cross-attention blended with the
  self-attention per head, out = text·(1−g) + visual·g, g = sigmoid(Linear(head_dim →
  head_dim)(text)), and g = 0 where no image is visible; variant ``single_softmax``
  (241101): one softmax over [visual keys; text keys].

The text path of the gated variant runs through the model's own attention implementation
(sdpa, eager, flash_attention_2), exactly as the plain layer; the visual path, and the joint
softmax of ``single_softmax``, use torch's scaled_dot_product_attention. Visual K/V are
computed once per prompt and reused at every decode step of generation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv, rotate_half

from mmfw.models.fusion.base import Fusion
from mmfw.resolution.layout import ImageLayout, TokenMap


@dataclass
class HyperContext:
    """What the hyper layers need for the current LLM call(s), per sample of the batch.

    ``features[b]``: one (n_k, hidden) tensor per image of sample b; ``index[b]``: the
    placeholder's index in the (padded) sequence; ``position[b]``: its position id;
    ``key_mask``: (B, L) 1 for real prompt tokens (keys after the prompt are always real).
    """

    features: list[list[torch.Tensor]]
    index: list[list[int]]
    position: list[list[int]]
    key_mask: torch.Tensor
    visual_kv: dict = field(default_factory=dict)

    @property
    def has_media(self) -> bool:
        return any(self.features)


class HyperAttention(nn.Module):
    """Replaces a decoder layer's ``self_attn``; reuses its q/k/v/o projections."""

    def __init__(
        self, attn: nn.Module, norm: nn.Module, rotary: nn.Module, fusion: HyperAttentionFusion
    ) -> None:
        super().__init__()
        self.attn = attn
        # Shared, not owned: held outside the module tree so their weights are not duplicated.
        self._shared = (norm, rotary, fusion)
        cfg = attn.config
        self.head_dim = attn.head_dim
        self.n_kv = cfg.num_key_value_heads
        weight = attn.q_proj.weight
        self.v_kv_proj = nn.Linear(
            cfg.hidden_size, 2 * self.n_kv * self.head_dim, device=weight.device, dtype=weight.dtype
        )
        self.gate = None
        if fusion.variant == "gated":
            self.gate = nn.Linear(
                self.head_dim, self.head_dim, device=weight.device, dtype=weight.dtype
            )
            if weight.device.type != "meta":
                nn.init.constant_(self.gate.bias, fusion.gate_bias_init)

    @property
    def layer_idx(self) -> int:
        return self.attn.layer_idx

    def _interface(self):
        impl = self.attn.config._attn_implementation
        eager = sys.modules[type(self.attn).__module__].eager_attention_forward
        return ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager)

    def forward(
        self,
        hidden_states,
        position_embeddings=None,
        attention_mask=None,
        past_key_values=None,
        **kwargs,
    ):
        attn = self.attn
        bsz, q_len, _ = hidden_states.shape
        shape = (bsz, q_len, -1, self.head_dim)
        q = attn.q_proj(hidden_states).view(shape).transpose(1, 2)
        k = attn.k_proj(hidden_states).view(shape).transpose(1, 2)
        v = attn.v_proj(hidden_states).view(shape).transpose(1, 2)
        cos, sin = position_embeddings
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        past = past_key_values.get_seq_length(self.layer_idx) if past_key_values is not None else 0
        if past_key_values is not None:
            k, v = past_key_values.update(k, v, self.layer_idx)
        ctx: HyperContext | None = self._shared[2].context
        if ctx is not None and torch.is_grad_enabled():
            # Training: visual K/V are this forward's own, so a checkpointed layer recomputes
            # them (and saves the same tensors) in backward; generation keeps them cached.
            ctx.visual_kv.pop(self.layer_idx, None)
        dropout = 0.0 if not self.training else attn.attention_dropout
        # Exactly the plain layer's call (Qwen2 passes its sliding window, Llama does not).
        extra = {"sliding_window": attn.sliding_window} if hasattr(attn, "sliding_window") else {}
        if ctx is None or not ctx.has_media:
            out, _ = self._interface()(
                attn,
                q,
                k,
                v,
                attention_mask,
                dropout=dropout,
                scaling=attn.scaling,
                **extra,
                **kwargs,
            )
        elif self.gate is None:
            out = self._joint(q, k, v, ctx, past, dropout)
        else:
            text, _ = self._interface()(
                attn,
                q,
                k,
                v,
                attention_mask,
                dropout=dropout,
                scaling=attn.scaling,
                **extra,
                **kwargs,
            )
            vis, visible = self._visual(q, ctx, past, dropout)  # (B, L, H, d), (B, L)
            g = torch.sigmoid(self.gate(text)) * visible[:, :, None, None].to(text.dtype)
            out = text * (1 - g) + vis.to(text.dtype) * g
        out = out.reshape(bsz, q_len, -1).contiguous()
        return attn.o_proj(out), None

    # -- visual keys and values ----------------------------------------------------------------

    def _visual_kv(
        self, ctx: HyperContext
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded visual K, V (B, n_kv, M, d), each key's placeholder index (B, M) and validity."""
        if self.layer_idx in ctx.visual_kv:
            return ctx.visual_kv[self.layer_idx]
        norm, rotary, _ = self._shared
        bsz = len(ctx.features)
        ref = self.v_kv_proj.weight
        lengths = [sum(int(f.shape[0]) for f in feats) for feats in ctx.features]
        m = max(lengths)
        keys = ref.new_zeros(bsz, self.n_kv, m, self.head_dim)
        values = ref.new_zeros(bsz, self.n_kv, m, self.head_dim)
        owner = torch.full((bsz, m), -1, dtype=torch.long, device=ref.device)
        for b, feats in enumerate(ctx.features):
            if not feats:
                continue
            x = torch.cat(feats).to(ref.dtype)
            kv = self.v_kv_proj(norm(x)).view(-1, self.n_kv, 2, self.head_dim)
            key, value = kv[:, :, 0].transpose(0, 1), kv[:, :, 1].transpose(0, 1)  # (n_kv, n, d)
            pos = torch.cat(
                [
                    torch.full((int(f.shape[0]),), p, device=ref.device)
                    for f, p in zip(feats, ctx.position[b], strict=True)
                ]
            )
            idx = torch.cat(
                [
                    torch.full((int(f.shape[0]),), i, device=ref.device)
                    for f, i in zip(feats, ctx.index[b], strict=True)
                ]
            )
            cos, sin = rotary(
                key, position_ids=pos.unsqueeze(0)
            )  # MI-RoPE: the placeholder's angle
            key = key * cos.to(key.dtype) + rotate_half(key) * sin.to(key.dtype)
            n = key.shape[1]
            keys[b, :, :n], values[b, :, :n], owner[b, :n] = key, value, idx
        result = (keys, values, owner, owner >= 0)
        ctx.visual_kv[self.layer_idx] = result
        return result

    def _media_mask(
        self, ctx: HyperContext, q_len: int, past: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, M) visual keys each query may see, and (B, L) whether it sees any."""
        _, _, owner, valid = self._visual_kv(ctx)
        query_index = torch.arange(past, past + q_len, device=owner.device)
        prompt_len = ctx.key_mask.shape[1]
        # Decode steps (past the prompt) see every image of their sample.
        ok = (query_index[None, :, None] >= owner[:, None, :]) | (
            query_index[None, :, None] >= prompt_len
        )
        mask = ok & valid[:, None, :]
        return mask, mask.any(-1)

    def _visual(
        self, q: torch.Tensor, ctx: HyperContext, past: int, dropout: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values, _, _ = self._visual_kv(ctx)
        groups = self.attn.num_key_value_groups
        mask, visible = self._media_mask(ctx, q.shape[2], past)
        safe = (
            mask | ~visible[..., None]
        )  # all-masked rows would give NaN; their output is gated to 0
        out = F.scaled_dot_product_attention(
            q,
            repeat_kv(keys, groups).to(q.dtype),
            repeat_kv(values, groups).to(q.dtype),
            attn_mask=safe[:, None],
            dropout_p=dropout,
            scale=self.attn.scaling,
        )
        return out.transpose(1, 2), visible

    def _joint(self, q, k, v, ctx: HyperContext, past: int, dropout: float) -> torch.Tensor:
        """One softmax over [visual keys; text keys] with the media and causal masks."""
        keys, values, _, _ = self._visual_kv(ctx)
        groups = self.attn.num_key_value_groups
        media, _ = self._media_mask(ctx, q.shape[2], past)
        kv_len = k.shape[2]
        key_ok = torch.ones(k.shape[0], kv_len, dtype=torch.bool, device=k.device)
        prompt = ctx.key_mask.bool()
        key_ok[:, : prompt.shape[1]] = prompt[:, :kv_len]
        query_index = torch.arange(past, past + q.shape[2], device=k.device)
        causal = torch.arange(kv_len, device=k.device)[None, :] <= query_index[:, None]
        text_mask = causal[None] & key_ok[:, None, :]
        mask = torch.cat([media, text_mask], dim=-1)[:, None]
        all_k = torch.cat([repeat_kv(keys, groups).to(q.dtype), repeat_kv(k, groups)], dim=2)
        all_v = torch.cat([repeat_kv(values, groups).to(q.dtype), repeat_kv(v, groups)], dim=2)
        out = F.scaled_dot_product_attention(
            q, all_k, all_v, attn_mask=mask, dropout_p=dropout, scale=self.attn.scaling
        )
        return out.transpose(1, 2)


class HyperAttentionFusion(Fusion):
    # A row's images are attended by every text token of that row: one sample per row.
    supports_packing = False

    """Image features reach the LLM through hyper attention in ``layers`` (see module doc).

    Each token map of an image's layout is one media item with one placeholder token
    (mPLUG-Owl3 gives every crop and the global view its own ``<|image|>``); separator parts
    are not used. Yaml keys:
      layers: 0-based decoder layers that get hyper attention (mPLUG-Owl3-7B: 0, 8, 16, 24,
        its config's 1-based ``hyper_layers`` [1, 9, 17, 25]).
      variant: gated | single_softmax.
      gate_bias_init: initial bias of the gate (gated variant); 0 gives g ≈ 0.5 as the
        released code; a negative value starts closer to the plain LLM.
    """

    placeholders_per_image = "maps"

    def __init__(
        self, *, layers: list[int], variant: str = "gated", gate_bias_init: float = 0.0
    ) -> None:
        super().__init__()
        if variant not in ("gated", "single_softmax"):
            raise ValueError(f"fusion.variant={variant!r}: use gated or single_softmax")
        self.layers = [int(i) for i in layers]
        self.variant = variant
        self.gate_bias_init = float(gate_bias_init)
        self.context: HyperContext | None = None

    def attach(self, model) -> None:
        decoder = getattr(model.llm, "model", None)
        blocks = getattr(decoder, "layers", None)
        if blocks is None or not hasattr(decoder, "rotary_emb"):
            raise ValueError(
                "fusion=hyper_attention supports Llama- and Qwen2-family LLMs (model.layers, model.rotary_emb)"
            )
        for i in self.layers:
            if not 0 <= i < len(blocks):
                raise ValueError(
                    f"fusion.layers has {i}, but the LLM has {len(blocks)} layers (0-based)"
                )
            layer = blocks[i]
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                if not hasattr(layer.self_attn, name):
                    raise ValueError(
                        f"layer {i}'s attention has no {name}: not a Llama/Qwen2-family layer"
                    )
            layer.self_attn = HyperAttention(
                layer.self_attn, layer.input_layernorm, decoder.rotary_emb, self
            )
        for name, _ in model.llm.named_parameters():
            if ".v_kv_proj." in name or ".self_attn.gate." in name:
                model.param_owners[f"llm.{name}"] = "fusion"

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_parts: list[list[torch.Tensor]],
        layouts: list[ImageLayout],
        image_token_id: int,
    ) -> tuple[torch.Tensor, dict]:
        maps = [
            t
            for parts, layout in zip(image_parts, layouts, strict=True)
            for t, p in zip(parts, layout.parts, strict=True)
            if isinstance(p, TokenMap)
        ]
        slots = (input_ids == image_token_id).nonzero().tolist()
        if len(slots) != len(maps):
            raise ValueError(
                f"the batch has {len(slots)} image placeholder tokens for {len(maps)} image token maps; "
                "hyper attention takes one placeholder per map"
            )
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        bsz = input_ids.shape[0]
        features: list[list[torch.Tensor]] = [[] for _ in range(bsz)]
        index: list[list[int]] = [[] for _ in range(bsz)]
        position: list[list[int]] = [[] for _ in range(bsz)]
        for (b, i), feats in zip(slots, maps, strict=True):
            features[b].append(feats)
            index[b].append(i)
            position[b].append(int(positions[b, i]))
        self.context = HyperContext(features, index, position, attention_mask)
        return inputs_embeds, {}
