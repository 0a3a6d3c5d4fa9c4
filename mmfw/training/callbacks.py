"""Callbacks: throughput, learning rate, and counts of skipped records."""

from __future__ import annotations

import time
from collections import Counter

import lightning as L


class RunStats(L.Callback):
    """Logs ``train/tokens_per_s``, ``train/lr`` and ``data/skipped_<reason>``; keeps totals.

    Tokens are the non-padding positions of a batch (text and image tokens), per process.
    """

    def __init__(self) -> None:
        self.skipped: Counter = Counter()
        self.tokens = 0
        self.seconds = 0.0
        self._t0: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.skipped.update(batch.get("skipped", {}))
        for reason, n in self.skipped.items():
            pl_module.log(f"data/skipped_{reason}", float(n), batch_size=1)
        if batch["input_ids"] is None or self._t0 is None:
            return
        dt = time.perf_counter() - self._t0
        tokens = int(batch["attention_mask"].sum())
        self.tokens += tokens
        self.seconds += dt
        pl_module.log("train/tokens_per_s", tokens / max(dt, 1e-9), batch_size=1, prog_bar=True)
        opt = trainer.optimizers[0]
        pl_module.log("train/lr", max(g["lr"] for g in opt.param_groups), batch_size=1)

    def state_dict(self) -> dict:
        return {"skipped": dict(self.skipped), "tokens": self.tokens, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = Counter(state.get("skipped", {}))
        self.tokens = state.get("tokens", 0)
        self.seconds = state.get("seconds", 0.0)

    @property
    def mean_tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class SaveOnException(L.Callback):
    """Writes ``last.ckpt`` when training stops on an exception, so no work is lost (the
    error itself still propagates). ``resume=auto`` then continues from there."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path, weights_only=False)
