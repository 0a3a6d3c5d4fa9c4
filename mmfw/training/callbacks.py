"""Callbacks: throughput and MFU, the data's skips and mixture, reproducible per-step randomness,
no lost work."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from mmfw.training.encoder_load import EncoderLoad
from mmfw.training.flops import StepFlops


class ThroughputStats(L.Callback):
    """Logs ``train/tokens_per_s``, ``train/samples_per_s`` (summed over ranks), ``train/lr``
    and, when ``peak_tflops`` is known, ``train/mfu`` and ``train/mfu_without_encoder`` (model
    FLOPs / step time / peak, see ``mmfw.training.flops``); :meth:`summary` gives the run's
    totals for ``metrics.json``.

    Tokens are the non-padding positions of a batch (text and image tokens);
    ``data/padding_fraction`` in the summary is the share of padding among all positions;
    ``batch/over_fixed_rows`` counts this rank's micro-batches that needed more rows than
    ``data.fixed_rows`` (each a new shape).
    """

    def __init__(self, peak_tflops: float | None = None, image_token_id: int | None = None):
        self.peak_tflops = peak_tflops
        self.image_token_id = image_token_id
        self.image_tokens = 0
        self.tokens = 0
        self.positions = 0  # sequence positions, padding included: data/padding_fraction
        self.samples = 0
        self.over_fixed_rows = 0
        self.seconds = 0.0
        self.flops = {"encoder": 0.0, "connector": 0.0, "llm": 0.0}
        self._t0: float | None = None
        self._first: float | None = None
        self._last: float | None = None
        self._counter: StepFlops | None = None
        self.encoder = EncoderLoad()

    def on_train_start(self, trainer, pl_module) -> None:
        self._counter = StepFlops(pl_module.model)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t0 = time.perf_counter()
        if self._first is None:
            self._first = self._t0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.encoder.step(trainer, pl_module)  # a collective: every rank, every batch
        if batch["input_ids"] is None or self._t0 is None:
            return
        self._last = time.perf_counter()
        dt = max(self._last - self._t0, 1e-9)
        tokens = int(batch["attention_mask"].sum())
        samples = int(batch["num_samples"])
        self.tokens += tokens
        self.positions += int(batch["attention_mask"].numel())
        if self.image_token_id is not None:
            self.image_tokens += int((batch["input_ids"] == self.image_token_id).sum())
        self.samples += samples
        self.over_fixed_rows += int(batch.get("over_fixed_rows", 0))
        self.seconds += dt
        sync = trainer.world_size > 1
        log = pl_module.log
        # The ranks of a context-parallel group share one batch: each logs its share.
        share = int(getattr(pl_module, "context_parallel", 1) or 1)
        log(
            "train/tokens_per_s",
            tokens / dt / share,
            batch_size=1,
            prog_bar=True,
            sync_dist=sync,
            reduce_fx="sum",
        )
        log(
            "train/samples_per_s",
            samples / dt / share,
            batch_size=1,
            sync_dist=sync,
            reduce_fx="sum",
        )
        opt = trainer.optimizers[0]
        log("train/lr", max(g["lr"] for g in opt.param_groups), batch_size=1)
        if self._counter is not None:
            step = self._counter(batch)
            for part, value in step.items():
                self.flops[part] += value
            if self.peak_tflops:
                peak = self.peak_tflops * 1e12
                total = sum(step.values()) / share
                log("train/mfu", total / dt / peak, batch_size=1, sync_dist=sync)
                log(
                    "train/mfu_without_encoder",
                    (total - step["encoder"] / share) / dt / peak,
                    batch_size=1,
                    sync_dist=sync,
                )

    def summary(self, world: int, share: int = 1) -> dict:
        """Run totals for ``metrics.json`` (rates summed over the ``world`` data-parallel
        replicas, MFU per device; ``share`` ranks of a context-parallel group split each
        batch's work)."""
        out = {
            # Wall time of this session's training loop, data loading included (setup excluded).
            "time/train_loop_s": round((self._last or 0.0) - (self._first or 0.0), 3),
            "train/tokens_per_s": round(self.mean(self.tokens) * world, 1),
            "train/samples_per_s": round(self.mean(self.samples) * world, 3),
            "train/flops_per_token": round(sum(self.flops.values()) / max(self.tokens, 1), 1),
            # Pad positions / all positions fed to the LLM over the run (this rank's batches).
            "data/padding_fraction": round(1 - self.tokens / max(self.positions, 1), 6),
            "batch/over_fixed_rows": self.over_fixed_rows,
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            # This process's device; the GPU check compares it with mmfw-plan's memory block.
            out["memory/peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
        out.update(self.encoder.summary())
        if self.image_token_id is not None and self.samples:
            out["data/image_tokens_per_sample"] = round(self.image_tokens / self.samples, 2)
        if self.peak_tflops and self.seconds:
            peak = self.peak_tflops * 1e12
            total = sum(self.flops.values()) / share
            out["train/mfu"] = round(total / self.seconds / peak, 5)
            out["train/mfu_without_encoder"] = round(
                (total - self.flops["encoder"] / share) / self.seconds / peak, 5
            )
        return out

    def mean(self, count: float) -> float:
        return count / self.seconds if self.seconds else 0.0

    def state_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "positions": self.positions,
            "image_tokens": self.image_tokens,
            "samples": self.samples,
            "over_fixed_rows": self.over_fixed_rows,
            "seconds": self.seconds,
            "flops": dict(self.flops),
            "encoder": self.encoder.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.tokens = state.get("tokens", 0)
        self.positions = state.get("positions", self.tokens)
        self.image_tokens = state.get("image_tokens", 0)
        self.samples = state.get("samples", 0)
        self.over_fixed_rows = state.get("over_fixed_rows", 0)
        self.seconds = state.get("seconds", 0.0)
        self.flops.update(state.get("flops", {}))
        self.encoder.load_state_dict(state.get("encoder", {}))


@dataclass
class EpochSkips:
    """What one epoch skipped, for the too-many-skipped warning (once per epoch)."""

    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    seen: int = 0  # records drawn, skipped ones included
    warned: bool = False


class DataStats(L.Callback):
    """The data side of a run: ``data/skipped/<reason>`` (and a loud warning, kept in run.json,
    when an epoch skips more than ``max_skipped_fraction`` of its records) and the realized
    mixture ``data/realized/<source>`` next to the configured one (:meth:`mixture`).

    ``sources``: source name → (category, configured fraction), in the mixture's order.
    ``record``: the run's :class:`~mmfw.run_dir.record.RunRecord` (the warning's home).
    """

    def __init__(
        self,
        max_skipped_fraction: float = 1.0,
        record=None,
        sources: dict[str, tuple[str, float]] | None = None,
    ) -> None:
        self.sources = dict(sources or {})
        self.drawn = [0] * len(self.sources)
        self.max_skipped_fraction = max_skipped_fraction
        self.record = record
        self.skipped: Counter = Counter()
        self.epoch = EpochSkips()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch = EpochSkips()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.skipped.update(batch.get("skipped", {}))
        for reason, n in self.skipped.items():
            pl_module.log(f"data/skipped/{reason}", float(n), batch_size=1)
        self._watch_skips(trainer, batch)
        self._count_sources(pl_module, batch)

    def _count_sources(self, pl_module, batch: dict) -> None:
        """Realized mixture: the share of drawn records each source supplied so far."""
        for s in batch.get("sources", []):
            if 0 <= s < len(self.drawn):
                self.drawn[s] += 1
        total = sum(self.drawn)
        if total and len(self.sources) > 1:
            for name, n in zip(self.sources, self.drawn, strict=True):
                pl_module.log(f"data/realized/{name}", n / total, batch_size=1)

    def mixture(self, drawn: list[int]) -> dict:
        """``data/configured/<source>``, ``data/realized/<source>`` and the same per category."""
        total = sum(drawn) or 1
        out: dict = {}
        by_cat: dict[str, list[float]] = {}
        for (name, (category, configured)), n in zip(self.sources.items(), drawn, strict=True):
            out[f"data/configured/{name}"] = round(configured, 6)
            out[f"data/realized/{name}"] = round(n / total, 6)
            acc = by_cat.setdefault(category, [0.0, 0.0])
            acc[0] += configured
            acc[1] += n / total
        for category, (configured, realized) in by_cat.items():
            out[f"data/configured_category/{category}"] = round(configured, 6)
            out[f"data/realized_category/{category}"] = round(realized, 6)
        return out

    def _watch_skips(self, trainer, batch: dict) -> None:
        """Once an epoch: warn loudly when too many of the records seen were skipped."""
        epoch = self.epoch
        epoch.reasons.update(batch.get("skipped", {}))
        for reason, where in batch.get("skipped_examples", {}).items():
            epoch.examples.setdefault(reason, where)
        epoch.seen += int(batch["num_samples"]) + sum(batch.get("skipped", {}).values())
        total = sum(epoch.reasons.values())
        if epoch.warned or epoch.seen < 50 or total <= self.max_skipped_fraction * epoch.seen:
            return
        epoch.warned = True
        top = ", ".join(
            f"{r} x{n} (e.g. {epoch.examples.get(r, '?')})" for r, n in epoch.reasons.most_common(3)
        )
        message = (
            f"{total} of the {epoch.seen} records seen in epoch {trainer.current_epoch} were "
            f"skipped ({total / epoch.seen:.0%} > data.max_skipped_fraction="
            f"{self.max_skipped_fraction}): {top}"
        )
        import warnings

        warnings.warn(f"mmfw: {message}", stacklevel=2)
        if self.record is not None and trainer.is_global_zero:
            self.record.update(data_warning=message)

    def state_dict(self) -> dict:
        return {"skipped": dict(self.skipped), "drawn": list(self.drawn)}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = Counter(state.get("skipped", {}))
        if len(state.get("drawn", [])) == len(self.drawn):
            self.drawn = list(state["drawn"])


class StepSeeds(L.Callback):
    """Reseeds Python, NumPy and torch (every device) before each micro-batch from
    (seed, rank, epoch, batch index). Randomness inside a step (dropout) is then a function of
    where the run is, so a resumed run draws exactly what the uninterrupted one drew, on any
    number of ranks, without storing generator states."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # hash() of a tuple of ints is the same in every process (no hash randomisation).
        key = (self.seed, trainer.global_rank, trainer.current_epoch, batch_idx)
        value = hash(key) & 0x7FFF_FFFF
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)


class GracefulStop(L.Callback):
    """SIGTERM makes every rank finish the optimizer step in flight and stop at the same step
    (then ``SaveOnException`` writes ``last.ckpt``, consistent with the sampler position).

    Lightning's own handler broadcasts from inside the signal handler, which deadlocks when the
    main thread is in another collective (an FSDP all-gather), and its end-of-step check is
    local to each rank. Here the handler only records the request on rank 0 (rank 0 decides
    for the job; other ranks ignore SIGTERM); after each optimizer step all ranks agree on it
    with one small all-reduce and raise Lightning's stop flag together.
    """

    def __init__(self) -> None:
        self.requested = False

    def on_train_start(self, trainer, pl_module) -> None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        rank_zero = trainer.global_rank == 0

        def handler(signum, frame) -> None:
            if rank_zero:
                self.requested = True

        signal.signal(signal.SIGTERM, handler)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # mid-accumulation: stop only where the optimizer has stepped
        stop = trainer.strategy.reduce_boolean_decision(self.requested, all=False)
        if stop:
            trainer._signal_connector.received_sigterm = True  # Lightning's flag (no setter)


class SaveOnException(L.Callback):
    """Writes ``last.ckpt`` when training stops on an exception (including SIGTERM), so no
    work is lost (the error itself still propagates). ``resume=auto`` then continues there."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        from mmfw.training.numerics import NonFiniteError

        if isinstance(exception, NonFiniteError):
            return  # the state is not to be trusted: the last good checkpoint stands
        # A save is collective: with several ranks it is safe only when every rank stops
        # together (Lightning broadcasts SIGTERM); otherwise the periodic checkpoints stand.
        if trainer.global_step > 0 and (
            trainer.world_size == 1 or isinstance(exception, SIGTERMException)
        ):
            from mmfw.run_dir.checkpoints import CheckpointWriteError

            try:
                trainer.save_checkpoint(self.path, weights_only=False)
            except CheckpointWriteError as e:  # the run's own error is the one to report
                import sys

                print(f"mmfw: warning: could not save on the way out: {e}", file=sys.stderr)


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar, but a run that ``trainer.max_steps`` drives shows its optimizer steps
    out of max_steps ("Step 120/200"), not an epoch count against max_epochs=-1."""

    @staticmethod
    def _step_driven(trainer) -> bool:
        return trainer.max_steps is not None and trainer.max_steps > 0

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        if self._step_driven(trainer):
            bar = self.train_progress_bar
            bar.reset(total=trainer.max_steps)
            bar.n = bar.last_print_n = trainer.global_step
            bar.set_description("Step")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._step_driven(trainer):
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        bar = self.train_progress_bar
        if bar is not None and not bar.disable and bar.n != trainer.global_step:
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
