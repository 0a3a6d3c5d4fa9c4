"""The Lightning data module: a weighted mixture of sources, tokenised by the run's processor."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.mixture import mixture_fractions
from mmfw.data.processor import SampleProcessor
from mmfw.data.sampler import GlobalBatchSampler, TokenBudgetBatchSampler
from mmfw.data.skips import MISSING_FILE, all_images_missing, named_files
from mmfw.data.sources import JsonSource


class VLDataModule(L.LightningDataModule):
    """Training and validation data.

    Yaml keys:
      sources: name → source (``path``, ``image_root``, ``category``, ``kind``, ``weight`` or
        ``alpha``, ``max_samples``, ``epochs``) for training; one source is read in a
        permutation per epoch, several are mixed by their configured fractions.
      alpha_reference: the category a source's ``alpha`` is relative to (MM1.5: general).
      kind_weights: share of each kind of source (MM1.5: single_image 0.8, multi_image 0.1,
        text_only 0.1); empty: by the sources' weights only.
      val_sources: name → source for the validation loss (empty: no validation).
      batch_size: samples per device per forward pass (the micro-batch).
      global_batch_size: samples per optimiser step over all devices (LLaVA: 256 to align,
        128 to SFT); gradient accumulation is derived from it and the device count. null:
        batch_size x devices x trainer.accumulate_grad_batches.
      num_workers: DataLoader worker processes (0 = in the main process).
      video_frames: frames sampled uniformly from each video (each frame is one image).
      max_length: token limit per sample (images expanded); a longer sample is skipped as
        ``too_long``.
      truncate: instead, cut an over-long sample's text at the last turn border that fits
        (never inside an image's tokens; skipped as ``too_long`` when no border fits).
      packing: several samples per row up to ``max_length`` tokens (position ids restart per
        sample, attention stays inside each sample, no label crosses a border); the
        micro-batch's ``batch_size`` samples become as few rows as fit.
      max_images_per_row: with packing, at most this many images in one row (null: no cap),
        so the vision encoder's load stays even across rows and ranks.
      fixed_rows: with packing, every training micro-batch is exactly this many rows of
        ``max_length`` tokens (null: as few rows as the samples need, as long as the longest),
        so every step has the same shapes (for ``trainer.compile`` and kernels that like them);
        a micro-batch that needs more rows still gets them (``batch/over_fixed_rows``).
      fixed_views: in training the vision encoder runs on exactly this many views per call
        (the last call filled with blank views whose features are dropped); null: all the
        micro-batch's views of one size in one call.
      loss_reduction: token | square | sample: how target tokens are weighted in the loss
        (mean over tokens; InternVL's square averaging; mean over samples), see
        ``mmfw.models.loss``.
      group_by_length: LLaVA's modality-aware length grouping: each global batch holds records
        of one modality (with / without images) and similar estimated length.
      max_tokens_per_batch: fill each micro-batch by estimated tokens (text + image tokens)
        instead of ``batch_size`` samples (null: by count).
      strict: raise on the first unusable record instead of skipping and counting it.
      max_skipped_fraction: above this share of skipped records among those seen in an epoch,
        a loud warning names the top reasons and example records (run.json keeps it).
      seed: seed of the sampling order (each epoch's order is a function of seed and epoch).
    The processor (tokenizer, template, resolution strategy, token counter) is attached by
    the run builder once the tokenizer and the model exist.
    """

    def __init__(
        self,
        *,
        sources: dict[str, JsonSource],
        val_sources: dict[str, JsonSource] | None = None,
        alpha_reference: str = "general",
        kind_weights: dict[str, float] | None = None,
        batch_size: int = 32,
        global_batch_size: int | None = None,
        num_workers: int = 0,
        video_frames: int = 8,
        max_length: int = 2048,
        truncate: bool = False,
        packing: bool = False,
        max_images_per_row: int | None = None,
        fixed_rows: int | None = None,
        fixed_views: int | None = None,
        loss_reduction: str = "token",
        group_by_length: bool = False,
        max_tokens_per_batch: int | None = None,
        strict: bool = False,
        max_skipped_fraction: float = 0.05,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError("data.sources is empty: name at least one source")
        self.sources = dict(sources)
        self.val_sources = dict(val_sources or {})
        self.alpha_reference = alpha_reference
        self.kind_weights = dict(kind_weights or {})
        self.batch_size = batch_size
        self.global_batch_size = global_batch_size
        self.num_workers = num_workers
        self.max_length = max_length
        self.truncate = truncate
        if video_frames < 1:
            raise ValueError(f"data.video_frames={video_frames} must be >= 1")
        self.video_frames = int(video_frames)
        from mmfw.models.loss import POWERS

        if loss_reduction not in POWERS:
            raise ValueError(f"data.loss_reduction={loss_reduction!r}: use one of {sorted(POWERS)}")
        if max_images_per_row is not None and max_images_per_row < 1:
            raise ValueError(f"data.max_images_per_row={max_images_per_row} must be >= 1 or null")
        if max_tokens_per_batch is not None and max_tokens_per_batch < 1:
            raise ValueError(f"data.max_tokens_per_batch={max_tokens_per_batch} must be >= 1")
        if fixed_rows is not None and (fixed_rows < 1 or not packing):
            raise ValueError(
                f"data.fixed_rows={fixed_rows} needs data.packing=true and a value >= 1 "
                "(without packing a micro-batch is data.batch_size rows already)"
            )
        if fixed_views is not None and fixed_views < 1:
            raise ValueError(f"data.fixed_views={fixed_views} must be >= 1 or null")
        self.fixed_rows, self.fixed_views = fixed_rows, fixed_views
        self.packing = bool(packing)
        self.max_images_per_row = max_images_per_row
        self.loss_reduction = loss_reduction
        self.group_by_length = bool(group_by_length)
        self.max_tokens_per_batch = max_tokens_per_batch
        self.strict = strict
        if not 0 <= max_skipped_fraction <= 1:
            raise ValueError(f"data.max_skipped_fraction={max_skipped_fraction} must be in [0, 1]")
        self.max_skipped_fraction = float(max_skipped_fraction)
        self.seed = seed
        self.processor: SampleProcessor | None = None
        self.sampler: GlobalBatchSampler | None = None
        self._resume: dict | None = None

    def attach(self, processor: SampleProcessor) -> None:
        self.processor = processor

    def texts(self) -> Iterator[str]:
        """All message texts of the training sources (to train a tokenizer on)."""
        from mmfw.data.formats.llava_json import VIDEO_PLACEHOLDER, RecordError, parse_record
        from mmfw.data.templates.base import IMAGE_PLACEHOLDER

        for src in self.sources.values():
            records = src.records()
            for i in range(len(records)):
                try:
                    turns = parse_record(records[i]).turns
                except RecordError:
                    continue
                for turn in turns:
                    yield turn.text.replace(VIDEO_PLACEHOLDER, IMAGE_PLACEHOLDER)

    def prepare_data(self) -> None:
        for src in [*self.sources.values(), *self.val_sources.values()]:
            src.records()

    def probe(self, per_source: int = 32) -> dict[str, dict]:
        """Build up to ``per_source`` records of every training source, evenly spread, the
        way training will. A source none of whose probed records is usable stops the run
        before step 1, with the reasons and an example record; so does one whose every probed
        record that names an image (or video) misses it, though its text-only records would
        train (a wrong ``image_root``). Returns the counts."""
        from collections import Counter

        from mmfw.data.formats.llava_json import RecordError
        from mmfw.data.skips import Skipped, where
        from mmfw.errors import UserError

        report = {}
        for name, src in self.sources.items():
            ds = ConversationDataset([src], strict=False)
            n = len(ds)
            if n == 0:
                raise UserError(f"data.sources.{name}: {src.path} holds no records")
            k = min(per_source, n)  # evenly spread over the whole file, however short
            picks = sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)})
            reasons: Counter = Counter()
            examples: dict[str, str] = {}
            usable = 0
            named, missing = 0, []  # records naming image files; the first missing file of each
            for i in picks:
                item = ds[i]
                if isinstance(item, Skipped):
                    reasons[item.reason] += 1
                    examples.setdefault(item.reason, f"{item.where}")
                    continue
                files = named_files(item.record)
                # Embedded images (shards, TSVs) count as image records too: they are not missing.
                named += bool(item.record.images or item.record.video)
                try:
                    self.processor.training_sample(item.record, item.image_root)
                    usable += 1
                except RecordError as e:
                    reasons[e.reason] += 1
                    examples.setdefault(
                        e.reason, f"{where(item.source_path, item.index, item.record.id)}: {e}"
                    )
                    if e.reason in MISSING_FILE:
                        gone = [f for f in files if not (item.image_root / f).exists()]
                        missing.append(str(item.image_root / (gone or files or ["?"])[0]))
            report[name] = {"probed": len(picks), "usable": usable, "skipped": dict(reasons)}
            if named and len(missing) == named:
                raise UserError(all_images_missing(f"data.sources.{name}", src, named, missing[0]))
            if usable == 0:
                detail = "; ".join(
                    f"{reason} x{count} (e.g. {examples[reason]})"
                    for reason, count in reasons.most_common()
                )
                raise UserError(
                    f"data.sources.{name}: none of the {len(picks)} records probed from {src.path} "
                    f"is usable: {detail}. Check data.sources.{name}.path and .image_root"
                )
        return report

    def _dataset(self, sources: dict[str, JsonSource]) -> ConversationDataset:
        return ConversationDataset(list(sources.values()), self.strict)

    def _collator(self, training: bool = True) -> TrainingCollator:
        if self.processor is None:
            raise RuntimeError("VLDataModule.attach(processor) must be called before loading data")
        pad = self.processor.tokenizer.pad_token_id
        return TrainingCollator(
            self.processor,
            pad,
            strict=self.strict,
            seed=self.seed,
            packing=self.packing and training,
            max_images_per_row=self.max_images_per_row,
            fixed_rows=self.fixed_rows if training else None,
        )

    def length_estimates(self, ds: ConversationDataset) -> tuple[list[int], list[int]]:
        """(estimated tokens, has images) per record, from the sources' indexes: text
        bytes times the tokenizer's tokens-per-byte (measured on up to 64 records)
        plus each image's tokens at a typical 640x480 (a video: ``video_frames`` images)."""
        import numpy as np

        chars, images = [], []
        for src in ds.sources:
            c, i = src.estimates()
            chars.append(np.asarray(c, dtype=np.int64))
            images.append(np.asarray(i, dtype=np.int64))
        chars, images = np.concatenate(chars), np.concatenate(images)
        images = np.where(images < 0, self.video_frames, images)
        proc = self.processor
        per_image = proc.counter(proc.strategy.layout(640, 480, images_in_sample=1))
        texts = [t for t in self.texts_sample(64)]
        n_chars = sum(len(t.encode()) for t in texts)  # the index counts UTF-8 bytes
        n_tokens = sum(len(proc.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        per_char = n_tokens / n_chars if n_chars else 0.25
        lengths = np.ceil(chars * per_char).astype(np.int64) + images * per_image + 8
        return lengths.tolist(), (images > 0).astype(np.int64).tolist()

    def texts_sample(self, n: int) -> list[str]:
        out = []
        for text in self.texts():
            out.append(text)
            if len(out) >= n:
                break
        return out

    def configured_fractions(self) -> dict[str, float]:
        """The share of drawn samples each training source is configured to be."""
        sizes = {name: len(src.records()) for name, src in self.sources.items()}
        if len(self.sources) == 1:
            return dict.fromkeys(self.sources, 1.0)
        return mixture_fractions(self.sources, sizes, self.alpha_reference, self.kind_weights)

    def train_dataloader(self) -> DataLoader:
        ds = self._dataset(self.sources)
        rank, world, accumulate = self._layout()
        fractions = None if len(self.sources) == 1 else list(self.configured_fractions().values())
        lengths = modalities = None
        if self.group_by_length or self.max_tokens_per_batch:
            lengths, modalities = self.length_estimates(ds)
        self.sampler = GlobalBatchSampler(
            ds.source_sizes(),
            fractions,
            epochs=[src.epochs for src in self.sources.values()],
            seed=self.seed,
            micro_batch=self.batch_size,
            accumulate=accumulate,
            rank=rank,
            world=world,
            lengths=lengths,
            modalities=modalities,
            group_by_length=self.group_by_length,
        )
        if self._resume is not None:
            self.sampler.resume_at(self._resume["epoch"], self._resume["micro_batches"])
            self._resume = None
        if self.max_tokens_per_batch:
            budget = TokenBudgetBatchSampler(self.sampler, lengths, self.max_tokens_per_batch)
            batching = {"batch_sampler": budget}
        else:
            batching = {"batch_size": self.batch_size, "sampler": self.sampler, "drop_last": False}
        return DataLoader(
            ds,
            **batching,
            num_workers=self.num_workers,
            collate_fn=self._collator(),
            persistent_workers=self.num_workers > 0,
            # Worker seeds come from this generator, not from the global RNG, so building the
            # loader at a resume consumes nothing the model's dropout would have used.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_sources:
            return []
        ds = self._dataset(self.val_sources)
        rank, world, _ = self._layout()
        sampler = (
            DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False)
            if world > 1
            else None
        )
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self._collator(training=False),
        )

    def _layout(self) -> tuple[int, int, int]:
        """(replica, replicas, accumulation) from the Trainer running this data (1 process
        without). The ranks of one context-parallel group are one replica: same batches."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1, 1
        cp = int(getattr(trainer.lightning_module, "context_parallel", 1) or 1)
        return (
            trainer.global_rank // cp,
            trainer.world_size // cp,
            int(trainer.accumulate_grad_batches),
        )

    def state_dict(self) -> dict:
        """Where the sampler stands: the epoch and the micro-batches this epoch has trained."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {}
        done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        # Count whole optimizer steps only: a step's micro-batches are replayed together.
        done -= done % max(1, int(trainer.accumulate_grad_batches))
        return {"epoch": int(trainer.current_epoch), "micro_batches": done}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        if self.sampler is not None:  # the loader already exists (strategies that restore late)
            self.sampler.resume_at(state["epoch"], state["micro_batches"])
        else:
            self._resume = dict(state)
