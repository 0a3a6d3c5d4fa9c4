"""Optimisers with a linear-warmup + cosine schedule: AdamW (LLaVA, IXC) and Adafactor (MM1.5)."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    total_steps: int, warmup_ratio: float, min_lr_ratio: float, warmup_steps: int | None = None
):
    """lr multiplier: linear 0→1 over the warmup, cosine 1→min_lr_ratio over the rest.
    ``warmup_steps`` (when given) wins over ``warmup_ratio``."""
    warmup = warmup_steps if warmup_steps is not None else math.ceil(total_steps * warmup_ratio)
    warmup = max(0, int(warmup))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class _WarmupCosine:
    """Shared schedule keys of the optimiser yamls."""

    # Bytes of optimiser state per trainable parameter in float32 (for mmfw-plan's memory block).
    state_bytes_per_param = 0.0

    def __init__(
        self,
        *,
        weight_decay: float,
        warmup_ratio: float,
        warmup_steps: int | None,
        min_lr_ratio: float,
    ) -> None:
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"optim.warmup_ratio={warmup_ratio} must be in [0, 1)")
        if warmup_steps is not None and warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps={warmup_steps} must be >= 0 (or null)")
        if not 0 <= min_lr_ratio <= 1:
            raise ValueError(f"optim.min_lr_ratio={min_lr_ratio} must be in [0, 1]")
        if weight_decay < 0:
            raise ValueError(f"optim.weight_decay={weight_decay} must be >= 0")
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio

    def optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def build(self, groups: list[dict], total_steps: int) -> dict:
        """Lightning's ``configure_optimizers`` answer for these parameter groups."""
        opt = self.optimizer(groups)
        schedule = warmup_cosine(
            total_steps, self.warmup_ratio, self.min_lr_ratio, self.warmup_steps
        )
        sched = LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class AdamWCosine(_WarmupCosine):
    """AdamW with warmup + cosine.

    Yaml keys:
      betas, eps: AdamW's.
      weight_decay: applied to weight matrices only (the stage names the exclusions).
      warmup_ratio: share of the total steps spent warming up (LLaVA: 0.03).
      warmup_steps: warmup length in steps; overrides warmup_ratio when set.
      min_lr_ratio: final lr as a share of the peak (the cosine's floor; 0 = decay to zero).
    """

    state_bytes_per_param = 8.0  # first and second moments

    def __init__(
        self,
        *,
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.03,
        warmup_steps: int | None = None,
        min_lr_ratio: float = 0.0,
    ) -> None:
        super().__init__(
            weight_decay=weight_decay,
            warmup_ratio=warmup_ratio,
            warmup_steps=warmup_steps,
            min_lr_ratio=min_lr_ratio,
        )
        self.betas = tuple(betas)
        self.eps = eps

    def optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, betas=self.betas, eps=self.eps)


class AdafactorCosine(_WarmupCosine):
    """Adafactor (torch.optim.Adafactor: factored second moments, no first moment) with warmup
    + cosine, as MM1/MM1.5 trained.

    Yaml keys:
      beta2_decay: decay-rate exponent of the second-moment estimate (-0.8 in the paper).
      eps: (eps1, eps2) regularisers; null entries take torch's defaults.
      d: update clipping threshold.
      weight_decay, warmup_ratio, warmup_steps, min_lr_ratio: as for AdamW.
    """

    # Factored second moments: one row and one column vector per matrix, ~0 per parameter.
    state_bytes_per_param = 0.0

    def __init__(
        self,
        *,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] | list = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.0,
        warmup_steps: int | None = None,
        min_lr_ratio: float = 0.0,
    ) -> None:
        super().__init__(
            weight_decay=weight_decay,
            warmup_ratio=warmup_ratio,
            warmup_steps=warmup_steps,
            min_lr_ratio=min_lr_ratio,
        )
        self.beta2_decay = beta2_decay
        self.eps = tuple(eps)
        self.d = d

    def optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        return torch.optim.Adafactor(groups, beta2_decay=self.beta2_decay, eps=self.eps, d=self.d)
