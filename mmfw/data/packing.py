"""Sequence packing: several samples per row, each attending only to itself.

The micro-batch's samples go into as few rows as their tokens need (ceil(total /
``max_length``)), longest first, each into the currently shortest row it fits (at most
``max_length`` tokens and ``max_images`` images per row, so the vision encoder's load stays even);
when one does not fit, the packing is redone with one row more. Balanced rows, not rows filled one after the other, keep
the padding at the end of the shorter rows small. Each sample's
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


def pack_rows(
    lengths: list[int], images: list[int], max_length: int, max_images: int | None
) -> list[list[int]]:
    """Rows of sample indices, balanced in tokens, within the token and image caps: the
    fewest rows (from ceil(total / max_length) up) into which longest-first placement fits."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for n_rows in range(max(1, -(-sum(lengths) // max_length)), len(lengths) + 1):
        rows: list[list[int]] = [[] for _ in range(n_rows)]
        used = [0] * n_rows
        imgs = [0] * n_rows
        for i in order:
            fits = [
                r
                for r in range(n_rows)
                if used[r] + lengths[i] <= max_length
                and (max_images is None or imgs[r] + images[i] <= max_images)
            ]
            if not fits:
                break
            r = min(fits, key=used.__getitem__)
            rows[r].append(i)
            used[r] += lengths[i]
            imgs[r] += images[i]
        else:
            return [row for row in rows if row]
    return [[i] for i in order]  # one sample per row always fits (each is <= max_length)


class PackingCollator:
    """Packs a micro-batch's samples into as few rows as fit ``max_length``.

    ``fixed_rows``: every batch is exactly this many rows of ``max_length`` tokens (empty rows
    are padding), so each step has the same shapes; a batch that needs more rows gets them
    (a new shape, counted in ``batch["over_fixed_rows"]``)."""

    def __init__(
        self,
        pad_token_id: int,
        max_length: int,
        max_images: int | None = None,
        fixed_rows: int | None = None,
    ) -> None:
        self.pad = int(pad_token_id)
        self.max_length = int(max_length)
        self.max_images = max_images
        self.fixed_rows = fixed_rows

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
        rows = pack_rows(
            [len(s.input_ids) for s in samples],
            [len(s.images) for s in samples],
            self.max_length,
            self.max_images,
        )
        length = max(sum(len(samples[i].input_ids) for i in row) for row in rows)
        if self.fixed_rows:
            batch["over_fixed_rows"] = int(len(rows) > self.fixed_rows)
            length = self.max_length
            rows += [[] for _ in range(self.fixed_rows - len(rows))]
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
