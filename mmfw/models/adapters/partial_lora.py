"""Partial LoRA (InternLM-XComposer2): a LoRA delta applied only at image-token positions."""

from __future__ import annotations

import math

import torch
from torch import nn

from mmfw.models.adapters.image_positions import ImagePositions


class PartialLoRALinear(nn.Module):
    """``base(x) + mask · (B·A·dropout(x)) · alpha/r``; ``mask`` is 1 at image tokens, 0 at text,
    so text positions get exactly the base layer's output."""

    def __init__(
        self, base: nn.Linear, r: int, alpha: float, dropout: float, positions: ImagePositions
    ) -> None:
        super().__init__()
        self.base = base
        self.positions = positions
        self.scale = alpha / r
        self.lora_A = nn.Linear(
            base.in_features, r, bias=False, device=base.weight.device, dtype=base.weight.dtype
        )
        self.lora_B = nn.Linear(
            r, base.out_features, bias=False, device=base.weight.device, dtype=base.weight.dtype
        )
        self.dropout = nn.Dropout(dropout)
        if base.weight.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)  # starts as the identity change

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        mask = self.positions.mask_for(x)
        if mask is None:
            return out
        return out + self.lora_B(self.lora_A(self.dropout(x))) * (self.scale * mask)


class PartialLoRA:
    """Wraps the LLM's Linear layers named in ``targets`` with :class:`PartialLoRALinear`.

    Yaml keys:
      r: LoRA rank (IXC2-4KHD: 256).
      alpha: scale numerator (delta scaled by alpha / r).
      dropout: dropout on the LoRA input.
      targets: Linear module names (last path component) to wrap; an empty list wraps every
        Linear of the LLM except the output head (IXC: all of wqkv, wo, w1, w2, w3).
      ranks: per-target rank overrides, e.g. ``{q_proj: 8}`` (the released 4KHD checkpoint
        uses rank 8 on its fused wqkv, per LMDeploy's and vLLM's ports).
    """

    def __init__(
        self,
        *,
        r: int = 256,
        alpha: float = 256.0,
        dropout: float = 0.05,
        targets: list[str] | None = None,
        ranks: dict[str, int] | None = None,
    ) -> None:
        if r < 1:
            raise ValueError(f"partial LoRA r={r} must be >= 1")
        self.r, self.alpha, self.dropout = int(r), float(alpha), float(dropout)
        self.targets = list(targets or [])
        self.ranks = {k: int(v) for k, v in (ranks or {}).items()}

    def apply(self, model) -> list[str]:
        """Wrap the target layers of ``model.llm``; returns the new parameters' names."""
        head = model.llm.get_output_embeddings()
        wrapped = []
        for name, module in list(model.llm.named_modules()):
            for child_name, child in list(module.named_children()):
                if not isinstance(child, nn.Linear) or child is head:
                    continue
                if self.targets and child_name not in self.targets:
                    continue
                rank = self.ranks.get(child_name, self.r)
                layer = PartialLoRALinear(
                    child, rank, self.alpha, self.dropout, model.image_positions
                )
                setattr(module, child_name, layer)
                wrapped.append(f"llm.{name}.{child_name}" if name else f"llm.{child_name}")
        if not wrapped:
            raise ValueError(
                f"partial LoRA targets {self.targets} match no Linear layer of the LLM"
            )
        model.image_positions.attach(model.llm)
        return [f"{w}.{p}" for w in wrapped for p in ("lora_A.weight", "lora_B.weight")]
