"""What every benchmark shares: requests → batched generation → prediction rows → metrics.

A benchmark lists its generation requests (a question may be asked several times: CircularEval
passes, distractor counts, MC + open-ended), turns each answer into a prediction row and scores
the rows. ``run`` can evaluate one shard of the requests (a DDP rank) and gather the rows of
all shards before scoring, so every rank holds the same metrics.

Every prediction row has ``index``, ``prompt`` (the rendered prompt, images as ``<image>``),
``output`` (the raw generated text), ``prediction``, ``answer`` and ``correct``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from mmfw.data.formats.vlmeval_tsv import RowProblems
from mmfw.data.templates.base import Turn
from mmfw.eval.generation import Generated, generate


@dataclass
class Request:
    """One generation: the prompt and what its prediction row needs (``meta``)."""

    turns: list[Turn]
    images: list
    meta: dict = field(default_factory=dict)


class Benchmark(ABC):
    """Yaml keys shared by all benchmarks:
    max_samples: evaluate only the first N questions (null: all).
    batch_size: prompts per generation batch (results do not depend on it).
    max_new_tokens: generation length limit.
    stop: extra strings that end an answer (the chat template's own stop always does).
    """

    def __init__(
        self,
        *,
        max_samples: int | None = None,
        batch_size: int = 16,
        max_new_tokens: int = 16,
        stop: list[str] | None = None,
    ) -> None:
        self.max_samples = max_samples
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.stop = list(stop or [])
        self.problems = RowProblems()
        self._requests: list[Request] | None = None

    @abstractmethod
    def requests(self) -> list[Request]:
        """Every generation this benchmark asks for, in a fixed order."""

    @abstractmethod
    def row(self, request: Request, generated: Generated) -> dict:
        """The prediction row of one answer."""

    @abstractmethod
    def score(self, rows: list[dict]) -> dict:
        """Metrics over all prediction rows."""

    def limit(self, items: list) -> list:
        return items[: self.max_samples] if self.max_samples else items

    def run(
        self,
        model,
        processor,
        *,
        rank: int = 0,
        world: int = 1,
        gather: Callable[[list[dict]], list[list[dict]]] | None = None,
        synced: bool = False,
        use_cache: bool = True,
    ) -> tuple[list[dict], dict]:
        """Prediction rows and metrics. With ``world > 1`` this rank answers every
        ``world``-th request and ``gather`` collects all ranks' rows."""
        if self._requests is None:  # read and decoded once, also when evaluated every N steps
            self._requests = self.requests()
        requests = self._requests
        if not requests and self.problems:
            raise ValueError(
                f"no usable question: every row was unusable: {self.problems.summary()}"
            )
        mine = list(range(rank, len(requests), world))
        if synced:  # every rank runs the same number of batches (each forward is collective)
            per_rank = -(-len(requests) // world)
            mine += [mine[-1] if mine else 0] * (per_rank - len(mine))
        got = generate(
            model,
            processor,
            [(requests[i].turns, requests[i].images) for i in mine],
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            stop=self.stop,
            use_cache=use_cache,
            synced=synced,
        )
        rows, seen = [], set()
        for i, g in zip(mine, got, strict=True):
            if i in seen:  # padding of a synced shard
                continue
            seen.add(i)
            rows.append({"_order": i, **self.row(requests[i], g)})
        if gather is not None and world > 1:
            rows = [r for part in gather(rows) for r in part]
        rows.sort(key=lambda r: r["_order"])
        for r in rows:
            del r["_order"]
        metrics = self.score(rows)
        if self.problems:
            metrics["skipped_rows"] = dict(self.problems.counts)
            metrics["skipped_examples"] = dict(self.problems.examples)
        return rows, metrics
