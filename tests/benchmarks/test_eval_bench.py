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
    for name, batch, cache in (("batch 1, KV cache", 1, True), ("batch 8, KV cache", 8, True),
                               ("batch 8, no cache", 8, False)):  # fmt: skip
        # An untrained model never says its stop text: every answer runs the full 16 tokens.
        bench = MultipleChoiceBenchmark(
            path=str(data / "test_mc.tsv"), batch_size=batch, max_new_tokens=16
        )
        bench.run(comp.model, comp.processor, use_cache=cache)  # warm-up, files read
        t0 = time.perf_counter()
        rows, _ = bench.run(comp.model, comp.processor, use_cache=cache)
        results[name] = len(rows) / (time.perf_counter() - t0)
    base = results["batch 1, KV cache"]
    print(f"\nmultiple-choice evaluation, tiny LLaVA, {len(rows)} questions, 16 new tokens each:")
    for name, qps in results.items():
        print(f"  {name:<20} {qps:7.1f} questions/s   (x{qps / base:.2f} of batch 1)")
    assert results["batch 8, KV cache"] > results["batch 1, KV cache"]
