"""Evaluation throughput of the tiny model on this CPU: questions/s at batch 1 vs batch 8, and
with vs without the KV cache (``make bench``; numbers and ratios from the same run)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hydra.utils import instantiate

from mmfw.data.synthetic.source import ensure_generated
from mmfw.eval.benchmarks.multiple_choice import MultipleChoiceBenchmark
from tests.helpers import tiny_components

pytestmark = pytest.mark.bench


def test_questions_per_second(tmp_path):
    cfg, comp = tiny_components(tmp_path)
    data = ensure_generated(instantiate(cfg.synthetic), str(Path(cfg.paths.cache).expanduser()))
    comp.model.eval()
    results = {}
    runs = [(f"batch {b}, {'KV cache' if c else 'no cache'}, {t} tokens", b, c, t)
            for t in (16, 64) for b in (1, 8) for c in (True, False)]  # fmt: skip
    for name, batch, cache, tokens in runs:
        # An untrained model never says its stop text: every answer runs the full length.
        bench = MultipleChoiceBenchmark(
            path=str(data / "test_mc.tsv"), batch_size=batch, max_new_tokens=tokens
        )
        bench.run(comp.model, comp.processor, use_cache=cache)  # warm-up, files read
        t0 = time.perf_counter()
        rows, _ = bench.run(comp.model, comp.processor, use_cache=cache)
        results[name] = len(rows) / (time.perf_counter() - t0)
    print(f"\nmultiple-choice evaluation, tiny LLaVA, {len(rows)} questions (~100 prompt tokens):")
    for name, qps in results.items():
        tokens = name.rsplit(", ", 1)[1]
        base = results[f"batch 1, KV cache, {tokens}"]
        print(f"  {name:<32} {qps:7.1f} questions/s   (x{qps / base:.2f} of batch 1 with cache)")
    assert results["batch 8, KV cache, 16 tokens"] > results["batch 1, KV cache, 16 tokens"]
