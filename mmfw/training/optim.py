"""Optimiser + schedule: AdamW with linear warmup and cosine decay."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(total_steps: int, warmup_ratio: float, min_lr_ratio: float):
    """lr multiplier: linear 0→1 over the warmup, cosine 1→min_lr_ratio over the rest."""
    warmup = max(0, math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class AdamWCosine:
    """AdamW with warmup + cosine.

    Yaml keys:
      betas, eps: AdamW's.
      weight_decay: applied to weight matrices only.
      warmup_ratio: share of the total steps spent warming up (LLaVA: 0.03).
      min_lr_ratio: final lr as a share of the peak (0 = decay to zero).
    """

    def __init__(
        self,
        *,
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.03,
        min_lr_ratio: float = 0.0,
    ) -> None:
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"optim.warmup_ratio={warmup_ratio} must be in [0, 1)")
        self.betas = tuple(betas)
        self.eps = eps
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.min_lr_ratio = min_lr_ratio

    def build(self, groups: list[dict], total_steps: int) -> dict:
        """Lightning's ``configure_optimizers`` answer for these parameter groups."""
        opt = torch.optim.AdamW(groups, betas=self.betas, eps=self.eps)
        sched = LambdaLR(opt, warmup_cosine(total_steps, self.warmup_ratio, self.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
