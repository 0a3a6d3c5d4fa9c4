"""Batching: pad token sequences, keep images as a list (views differ in count and size)."""

from __future__ import annotations

import random
from collections import Counter

import torch

from mmfw.data.formats.llava_json import RecordError
from mmfw.data.processor import IGNORE, Sample
from mmfw.data.skips import Skipped, strict_error, where


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
        skips = [s for s in items if isinstance(s, Skipped)]
        skipped = Counter(s.reason for s in skips)
        examples = {s.reason: s.where for s in reversed(skips)}
        if not samples:
            return {
                "input_ids": None,
                "skipped": dict(skipped),
                "skipped_examples": examples,
                "num_samples": 0,
            }
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
            "skipped_examples": examples,
            "num_samples": n,
            "ids": [s.id for s in samples],
        }
        if labels is not None:
            batch["labels"] = labels
        return batch


class TrainingCollator:
    """Turns raw records into a padded (or, with ``packing``, packed) training batch.

    The strategy's batch-level options are drawn once per batch from a generator seeded by
    (seed, the batch's record indices), so a batch is reproducible wherever it is built.
    Unusable records are skipped and counted (or raise in strict mode).
    """

    def __init__(
        self,
        processor,
        pad_token_id: int,
        strict: bool = False,
        seed: int = 0,
        packing: bool = False,
        max_images_per_row: int | None = None,
        fixed_rows: int | None = None,
    ) -> None:
        from mmfw.data.packing import PackingCollator

        self.processor = processor
        self.pad = (
            PackingCollator(pad_token_id, processor.max_length, max_images_per_row, fixed_rows)
            if packing
            else PadCollator(pad_token_id, padding_side="right")
        )
        self.strict = strict
        self.seed = seed

    def __call__(self, items: list) -> dict:
        keys = tuple(getattr(it, "index", -1) for it in items)
        options = self.processor.strategy.batch_options(random.Random(hash((self.seed, keys))))
        samples: list[Sample | Skipped] = []
        for it in items:
            if isinstance(it, Skipped):
                samples.append(it)
                continue
            try:
                samples.append(self.processor.training_sample(it.record, it.image_root, **options))
            except RecordError as e:
                if self.strict:
                    raise strict_error(it.source_path, it.index, it.record.id, e) from e
                samples.append(
                    Skipped(e.reason, where(it.source_path, it.index, it.record.id), it.source)
                )
        batch = self.pad(samples)
        # Which source every drawn record came from (used or skipped): the realized mixture.
        batch["sources"] = [getattr(it, "source", -1) for it in items]
        return batch
