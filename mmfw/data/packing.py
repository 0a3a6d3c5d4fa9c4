"""Sequence packing: several samples per row, each attending only to itself.

Rows are filled first-fit by decreasing length up to ``max_length`` tokens (and at most
``max_images`` images per row, so the vision encoder's load stays even). Each sample's
position ids restart at 0 and its first label is ignored, so no label crosses a border; the
padding at the end of a row is its own segment. The model recognises a packed batch by its
``position_ids`` and gives the LLM no padding mask: transformers then builds the block-diagonal
causal mask (SDPA, eager) or takes the variable-length flash-attention path.
"""

from __future__ import annotations

from collections import Counter

import torch

from mmfw.data.processor import IGNORE, Sample
from mmfw.data.skips import Skipped


def first_fit(
    lengths: list[int], images: list[int], max_length: int, max_images: int | None
) -> list[list[int]]:
    """Rows of sample indices: longest first, each into the first row with room."""
    rows: list[list[int]] = []
    room: list[int] = []
    slots: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r in range(len(rows)):
            if lengths[i] <= room[r] and (max_images is None or images[i] <= slots[r]):
                rows[r].append(i)
                room[r] -= lengths[i]
                slots[r] -= images[i]
                break
        else:
            rows.append([i])
            room.append(max_length - lengths[i])
            slots.append((max_images or 0) - images[i])
    return rows


class PackingCollator:
    """Packs a micro-batch's samples into as few rows as fit ``max_length``."""

    def __init__(self, pad_token_id: int, max_length: int, max_images: int | None = None) -> None:
        self.pad = int(pad_token_id)
        self.max_length = int(max_length)
        self.max_images = max_images

    def __call__(self, items: list[Sample | Skipped]) -> dict:
        samples = [s for s in items if isinstance(s, Sample)]
        skips = [s for s in items if isinstance(s, Skipped)]
        batch = {
            "skipped": dict(Counter(s.reason for s in skips)),
            "skipped_examples": {s.reason: s.where for s in reversed(skips)},
            "num_samples": len(samples),
        }
        if not samples:
            return {**batch, "input_ids": None}
        rows = first_fit(
            [len(s.input_ids) for s in samples],
            [len(s.images) for s in samples],
            self.max_length,
            self.max_images,
        )
        length = max(sum(len(samples[i].input_ids) for i in row) for row in rows)
        shape = (len(rows), length)
        input_ids = torch.full(shape, self.pad, dtype=torch.long)
        labels = torch.full(shape, IGNORE, dtype=torch.long)
        attention = torch.zeros(shape, dtype=torch.long)
        positions = torch.zeros(shape, dtype=torch.long)
        sample_ids = torch.full(shape, -1, dtype=torch.long)
        images, layouts, ids = [], [], []
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                s = samples[i]
                k = len(s.input_ids)
                input_ids[r, at : at + k] = torch.tensor(s.input_ids)
                lab = torch.tensor(s.labels)
                lab[0] = IGNORE  # the previous sample's last token predicts nothing here
                labels[r, at : at + k] = lab
                attention[r, at : at + k] = 1
                positions[r, at : at + k] = torch.arange(k)
                sample_ids[r, at : at + k] = i
                # Images follow their placeholders: row by row, sample by sample.
                images += s.images
                layouts += s.layouts
                ids.append(s.id)
                at += k
            positions[r, at:] = torch.arange(length - at)
        return {
            **batch,
            "input_ids": input_ids,
            "attention_mask": attention,
            "labels": labels,
            "position_ids": positions,
            "sample_ids": sample_ids,
            "images": images,
            "layouts": layouts,
            "ids": ids,
        }
