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
        lengths: list[int] | None = None,
        modalities: list[int] | None = None,
        group_by_length: bool = False,
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
        if group_by_length and (lengths is None or modalities is None):
            raise ValueError("data.group_by_length needs the records' length estimates")
        self.lengths = lengths
        self.modalities = modalities
        self.group_by_length = group_by_length
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

    def grouped(self, order: list[int], epoch: int) -> list[int]:
        """LLaVA's modality-aware length grouping: within windows of 32 global batches, the
        records of one modality (with / without images) are sorted by length and cut into
        global batches, whose order is then shuffled. Each global batch holds records of similar
        length and (nearly always) one modality, so little of a batch is padding."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 7919)
        size = self.global_batch
        out: list[int] = []
        for start in range(0, len(order), size * 32):
            chunk = order[start : start + size * 32]
            groups, rest = [], []
            for modality in sorted({self.modalities[i] for i in chunk}):
                members = sorted(
                    (i for i in chunk if self.modalities[i] == modality),
                    key=self.lengths.__getitem__,
                )
                full = len(members) // size * size
                groups += [members[k : k + size] for k in range(0, full, size)]
                rest += members[full:]
            rest.sort(key=self.lengths.__getitem__)
            groups += [rest[k : k + size] for k in range(0, len(rest), size)]
            for g in torch.randperm(len(groups), generator=gen).tolist():
                out += groups[g]
        return out

    def epoch_order(self, epoch: int) -> list[int]:
        order = self.order(epoch).tolist()
        return self.grouped(order, epoch) if self.group_by_length else order

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order(self.epoch)
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


class TokenBudgetBatchSampler:
    """Micro-batches filled by tokens (``data.max_tokens_per_batch``), not by a sample count.

    The epoch order is the :class:`GlobalBatchSampler`'s (optionally length-grouped); every
    optimizer step takes ``accumulate x world`` micro-batches in turn from it, each gathering
    consecutive records while their estimated tokens fit the budget (at least one record). All
    ranks compute the same split, so they step together; an incomplete last step is dropped.
    """

    def __init__(self, base: GlobalBatchSampler, lengths: list[int], max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError(f"data.max_tokens_per_batch={max_tokens} must be >= 1")
        self.base = base
        self.lengths = lengths
        self.max_tokens = int(max_tokens)
        self.slots = base.accumulate * base.world

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def resume_at(self, epoch: int, micro_batches_done: int) -> None:
        self.base.resume_at(epoch, micro_batches_done)

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's micro-batches of the epoch."""
        order = self.base.epoch_order(epoch)
        micro, current, used = [], [], 0
        for i in order:
            if current and used + self.lengths[i] > self.max_tokens:
                micro.append(current)
                current, used = [], 0
            current.append(i)
            used += self.lengths[i]
        steps = len(micro) // self.slots
        mine = []
        for step in range(steps):
            for a in range(self.base.accumulate):
                mine.append(micro[step * self.slots + a * self.base.world + self.base.rank])
        return mine

    def __len__(self) -> int:
        return len(self.batches(self.base.epoch))

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.base.epoch)
        skip = 0
        resume = self.base._resume
        if resume is not None and resume[0] == self.base.epoch:
            skip = resume[1]
            self.base._resume = None
        yield from batches[skip:]
