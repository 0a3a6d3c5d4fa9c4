"""The training sampler: one global order per epoch, split by global batch across ranks,
resumable mid-epoch.

Epoch ``e``'s order is a pure function of ``(seed, e)``: for one source a permutation of its
records (repeated ``epochs`` times); for a mixture, each draw picks a source by its configured
fraction and a record of it uniformly. An epoch is ``sum(size x epochs)`` draws. Global step ``s`` consumes the slice
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
        fractions: list[float] | None,
        *,
        seed: int,
        micro_batch: int,
        accumulate: int = 1,
        rank: int = 0,
        world: int = 1,
        epochs: list[float] | None = None,
    ) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world size {world}")
        self.sizes = list(sizes)
        self.fractions = None if fractions is None else list(fractions)
        self.epochs = list(epochs or [1.0] * len(self.sizes))
        self.seed = int(seed)
        self.micro = int(micro_batch)
        self.accumulate = int(accumulate)
        self.rank = int(rank)
        self.world = int(world)
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.total = sum(round(n * e) for n, e in zip(self.sizes, self.epochs, strict=True))
        self.global_batch = self.micro * self.accumulate * self.world
        if self.total < self.global_batch:
            raise ValueError(
                f"the training data has {self.total} records, fewer than one global batch of "
                f"{self.global_batch} (data.batch_size x accumulation x devices): lower "
                "data.global_batch_size / data.batch_size or add data"
            )
        if self.fractions is not None and sum(self.fractions) <= 0:
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
        if self.fractions is None:
            parts = []
            for n, e, off in zip(self.sizes, self.epochs, self.offsets, strict=True):
                reps = [torch.randperm(n, generator=gen) for _ in range(max(1, int(-(-e // 1))))]
                parts.append(torch.cat(reps)[: round(n * e)] + off)
            order = torch.cat(parts)
            return order[torch.randperm(len(order), generator=gen)] if len(parts) > 1 else order
        probs = torch.tensor(self.fractions, dtype=torch.float64)
        source = torch.multinomial(probs, self.total, replacement=True, generator=gen)
        sizes = torch.tensor(self.sizes, dtype=torch.float64)
        within = (torch.rand(self.total, generator=gen, dtype=torch.float64) * sizes[source]).long()
        return torch.tensor(self.offsets)[source] + within

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
