"""The training sampler: one global order per epoch, split by global batch across ranks,
resumable mid-epoch.

Epoch ``e``'s order is a pure function of ``(seed, e)``: a permutation of the records for one
source, a weighted draw with replacement for a mixture. Global step ``s`` consumes the slice
``order[s·G : (s+1)·G]`` (G = micro × accumulation × ranks); inside it, micro-batch ``a`` of
rank ``r`` is ``[(a·ranks + r)·micro, +micro)``. So the same global batches are drawn whatever
the number of ranks, and a run resumed at any step continues with exactly the samples the
uninterrupted run would have seen. DataLoader workers only receive indices from this sampler,
so they never duplicate samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class GlobalBatchSampler(Sampler[int]):
    """Indices for one rank; ``set_epoch`` (called by Lightning) picks the epoch's order."""

    def __init__(
        self,
        sizes: list[int],
        weights: list[float],
        *,
        seed: int,
        micro_batch: int,
        accumulate: int = 1,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world size {world}")
        self.sizes = list(sizes)
        self.weights = list(weights)
        self.seed = int(seed)
        self.micro = int(micro_batch)
        self.accumulate = int(accumulate)
        self.rank = int(rank)
        self.world = int(world)
        self.total = sum(self.sizes)
        self.global_batch = self.micro * self.accumulate * self.world
        if self.total < self.global_batch:
            raise ValueError(
                f"the training data has {self.total} records, fewer than one global batch of "
                f"{self.global_batch} (data.batch_size x accumulation x devices): lower "
                "data.global_batch_size / data.batch_size or add data"
            )
        if len(self.sizes) > 1 and sum(w for w, n in zip(weights, sizes, strict=True) if n) <= 0:
            raise ValueError("data.sources: every non-empty source has weight 0")
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, micro-batches already consumed)

    @property
    def steps_per_epoch(self) -> int:
        return self.total // self.global_batch

    def __len__(self) -> int:
        return self.steps_per_epoch * self.accumulate * self.micro

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, micro_batches_done: int) -> None:
        """Skip the first ``micro_batches_done`` micro-batches of ``epoch`` (once)."""
        self._resume = (int(epoch), int(micro_batches_done))

    def order(self, epoch: int) -> torch.Tensor:
        """The epoch's global order of record indices (all ranks compute the same)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if len(self.sizes) == 1:
            return torch.randperm(self.total, generator=gen)
        per_item = torch.cat(
            [
                torch.full((n,), w / n if n else 0.0, dtype=torch.float64)
                for w, n in zip(self.weights, self.sizes, strict=True)
            ]
        )
        return torch.multinomial(per_item, self.total, replacement=True, generator=gen)

    def __iter__(self) -> Iterator[int]:
        order = self.order(self.epoch).tolist()
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1]
            self._resume = None
        k = 0
        for step in range(self.steps_per_epoch):
            base = step * self.global_batch
            for a in range(self.accumulate):
                if k >= skip:
                    start = base + (a * self.world + self.rank) * self.micro
                    yield from order[start : start + self.micro]
                k += 1
