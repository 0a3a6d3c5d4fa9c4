"""LLaVA-style SFT throughput (``gpu_sft_bench.py``): the GPU form (7B, FSDP2 on one device;
skipped without CUDA) and its tiny CPU form, the one the GPU check's dry run uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.bench


def bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.gpu_sft_bench", "--out", str(out), *args],
        cwd=REPO, capture_output=True, text=True, env=os.environ.copy(), timeout=900,
    )  # fmt: skip
    print(proc.stdout[-2000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (an H200: docs/gpu.md)")
def test_llava_7b_sft_throughput_on_one_gpu(tmp_path):
    result = bench(tmp_path, "--budget", "600")
    packed = result["variants"]["packed_4k"]
    assert packed["status"] == "passed"
    assert packed["medians_after_warmup"]["train/mfu"] > 0
    assert packed["run"]["memory/peak_allocated_bytes"] > 0
    assert result["plan_memory"]["per_device"]["total"] > 0


def test_tiny_cpu_form(tmp_path):
    result = bench(tmp_path, "--tiny", "--budget", "300")
    packed = result["variants"]["packed"]
    assert packed["status"] == "passed" and packed["steps"] == 4
    assert packed["medians_after_warmup"]["train/tokens_per_s"] > 0
    assert result["plan_memory"]["per_device"]["total"] > 0
    assert result["compile"]["status"] == "not measured"
