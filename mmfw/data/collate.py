"""Batching: pad token sequences, keep images as a list (views differ in count and size)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from mmfw.data.processor import IGNORE, Sample


@dataclass
class Skipped:
    """Placeholder for a record the dataset could not use; counted, never trained on."""

    reason: str


class PadCollator:
    """Pads to the longest sequence of the batch.

    ``padding_side``: right for training, left for batched generation. Skipped records are
    dropped and reported in ``batch["skipped"]`` (reason → count).
    """

    def __init__(self, pad_token_id: int, padding_side: str = "right") -> None:
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side={padding_side!r}: use 'left' or 'right'")
        self.pad = int(pad_token_id)
        self.side = padding_side

    def __call__(self, items: list[Sample | Skipped]) -> dict:
        samples = [s for s in items if isinstance(s, Sample)]
        skipped = Counter(s.reason for s in items if isinstance(s, Skipped))
        if not samples:
            return {"input_ids": None, "skipped": dict(skipped), "num_samples": 0}
        length = max(len(s.input_ids) for s in samples)
        n = len(samples)
        input_ids = torch.full((n, length), self.pad, dtype=torch.long)
        attention = torch.zeros((n, length), dtype=torch.long)
        has_labels = samples[0].labels is not None
        labels = torch.full((n, length), IGNORE, dtype=torch.long) if has_labels else None
        for i, s in enumerate(samples):
            k = len(s.input_ids)
            sl = slice(length - k, length) if self.side == "left" else slice(0, k)
            input_ids[i, sl] = torch.tensor(s.input_ids)
            attention[i, sl] = 1
            if labels is not None:
                labels[i, sl] = torch.tensor(s.labels)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "images": [img for s in samples for img in s.images],
            "layouts": [lay for s in samples for lay in s.layouts],
            "skipped": dict(skipped),
            "num_samples": n,
            "ids": [s.id for s in samples],
        }
        if labels is not None:
            batch["labels"] = labels
        return batch
