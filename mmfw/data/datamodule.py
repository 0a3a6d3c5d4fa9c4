"""The Lightning data module: a weighted mixture of sources, tokenised by the run's processor."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler, WeightedRandomSampler

from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.processor import SampleProcessor
from mmfw.data.sources import JsonSource


class VLDataModule(L.LightningDataModule):
    """Training and validation data.

    Yaml keys:
      sources: name → source (``path``, ``image_root``, ``weight``, ...) for training.
      val_sources: name → source for the validation loss (empty: no validation).
      batch_size: samples per device per step.
      num_workers: DataLoader worker processes (0 = in the main process).
      max_length: token limit per sample; longer samples are truncated after their images,
        or skipped (counted as ``too_long``) when an image would be cut.
      strict: raise on the first unusable record instead of skipping and counting it.
      seed: seed of the sampling order.
    The processor (tokenizer, template, resolution strategy, token counter) is attached by
    the run builder once the tokenizer and the model exist.
    """

    def __init__(
        self,
        *,
        sources: dict[str, JsonSource],
        val_sources: dict[str, JsonSource] | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        max_length: int = 2048,
        strict: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError("data.sources is empty: name at least one source")
        self.sources = dict(sources)
        self.val_sources = dict(val_sources or {})
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_length = max_length
        self.strict = strict
        self.seed = seed
        self.processor: SampleProcessor | None = None

    def attach(self, processor: SampleProcessor) -> None:
        self.processor = processor

    def texts(self) -> Iterator[str]:
        """All message texts of the training sources (to train a tokenizer on)."""
        for src in self.sources.values():
            for raw in src.records():
                for msg in raw.get("conversations", []) if isinstance(raw, dict) else []:
                    if isinstance(msg, dict) and "value" in msg:
                        yield str(msg["value"])

    def prepare_data(self) -> None:
        for src in [*self.sources.values(), *self.val_sources.values()]:
            src.records()

    def _dataset(self, sources: dict[str, JsonSource]) -> ConversationDataset:
        return ConversationDataset(list(sources.values()), self.strict)

    def _collator(self) -> TrainingCollator:
        if self.processor is None:
            raise RuntimeError("VLDataModule.attach(processor) must be called before loading data")
        pad = self.processor.tokenizer.pad_token_id
        return TrainingCollator(self.processor, pad, strict=self.strict, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        ds = self._dataset(self.sources)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=self._sampler(ds),
            num_workers=self.num_workers,
            collate_fn=self._collator(),
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_sources:
            return []
        return DataLoader(
            self._dataset(self.val_sources),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self._collator(),
        )

    def _sampler(self, ds: ConversationDataset) -> Sampler:
        """Uniform over records for one source; by source weight for a mixture."""
        gen = torch.Generator().manual_seed(self.seed)
        sizes = ds.source_sizes()
        weights = [src.weight for src in self.sources.values()]
        if len(sizes) == 1:
            return RandomSampler(ds, generator=gen)
        if sum(w for w, n in zip(weights, sizes, strict=True) if n) <= 0:
            raise ValueError("data.sources: every non-empty source has weight 0")
        per_item = torch.cat(
            [torch.full((n,), w / n if n else 0.0) for w, n in zip(weights, sizes, strict=True)]
        )
        return WeightedRandomSampler(per_item, num_samples=len(ds), replacement=True, generator=gen)
