"""The causal-LM loss with a named reduction (InternVL's choice), for padded or packed rows.

Every target token's cross-entropy gets the weight ``n_i^-p`` where ``n_i`` is the number of
target tokens of its sample: ``token`` (p=0, the plain mean over tokens), ``square`` (p=0.5)
and ``sample`` (p=1, the mean over samples of each sample's mean); the weights are normalised
to sum to 1. Packing changes nothing here: samples are told apart by ``sample_ids``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE = -100
POWERS = {"token": 0.0, "square": 0.5, "sample": 1.0}


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, sample_ids: torch.Tensor, reduction: str = "token"
) -> torch.Tensor:
    """Next-token loss of ``logits`` (B, L, V) against ``labels`` (B, L)."""
    # torch is imported here: the config check reads POWERS and must stay light.
    from torch.nn import functional as F

    logits, labels, ids = logits[:, :-1], labels[:, 1:], sample_ids[:, 1:]
    weights = target_weights(labels, ids, reduction)
    ce = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view_as(labels)
    if not bool((labels != IGNORE).any()):
        return ce.sum() * 0.0
    return (ce * weights).sum() / weights.sum()


def target_weights(targets: torch.Tensor, sample_ids: torch.Tensor, reduction: str) -> torch.Tensor:
    """Each target token's weight ``n_i^-p`` (0 where the target is ignored), for targets
    already aligned with the positions that predict them (B, L)."""
    import torch

    if reduction not in POWERS:
        raise ValueError(f"data.loss_reduction={reduction!r}: use one of {sorted(POWERS)}")
    valid = targets != IGNORE
    weights = torch.zeros(targets.shape, dtype=torch.float32, device=targets.device)
    if not bool(valid.any()):
        return weights
    rows = torch.arange(targets.shape[0], device=targets.device).unsqueeze(1).expand_as(targets)
    key = rows * (int(sample_ids.max()) + 2) + sample_ids  # a sample is (row, id)
    _, inverse, counts = torch.unique(key[valid], return_inverse=True, return_counts=True)
    weights[valid] = counts.float().pow(-POWERS[reduction])[inverse]
    return weights
