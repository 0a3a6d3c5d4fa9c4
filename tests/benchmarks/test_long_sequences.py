"""Long sequences on this CPU: context parallelism (2 processes) vs one process, and the
vision-encoder balance across 2 data-parallel replicas that drew different numbers of images.

Run with ``make bench``. Prints step time, saved activation bytes and peak RSS per rank and
the ratios, measured in the same run; asserts only what must hold whatever the speed (the
split halves what a rank keeps for backward; the balance evens the views)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.bench
WORKER = REPO / "tests" / "benchmarks" / "long_sequence_bench.py"
LENGTH = 8192  # tokens per packed row; the context-parallel batch is 2 rows
BALANCE_LENGTH = 1024  # per row, 2 rows per replica; replica 1 text-only
STEPS = 2


def _ranks(tmp_path, mode: str, procs: int, port: int, threads: int, length: int) -> list[dict]:
    out = tmp_path / f"{mode}.jsonl"
    launch = [sys.executable]
    if procs > 1:
        launch += ["-m", "torch.distributed.run", f"--nproc-per-node={procs}"]
        launch += [f"--master-port={port}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    cmd = [*launch, str(WORKER), str(out), mode, str(length), str(STEPS)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return sorted(
        (json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["rank"]
    )


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def test_context_parallel_step_and_memory_per_rank(tmp_path):
    # the same 2 cores either way: one process with 2 threads, or 2 processes with 1 each
    (one,) = _ranks(tmp_path, "none", 1, 0, threads=2, length=LENGTH)
    (seg,) = _ranks(tmp_path, "none+segments", 1, 0, threads=2, length=LENGTH)
    cp = _ranks(tmp_path, "cp", 2, 29641, threads=1, length=LENGTH)
    tokens = one["tokens"]
    print(
        f"\n[context parallel] {tokens} tokens per step (2 packed rows of {LENGTH}), tiny LLaVA-NeXT"
    )
    for label, r in (("transformers' mask", one), ("segment attention", seg)):
        print(
            f"[context parallel] none, {label} (1 process): {r['step_s']:.2f} s/step, "
            f"activations {_gb(r['activation_bytes'])}, peak RSS {_gb(r['peak_rss_bytes'])}"
        )
    for r in cp:
        print(
            f"[context parallel] cp=2 rank {r['rank']}: {r['step_s']:.2f} s/step "
            f"({r['step_s'] / seg['step_s']:.2f}x segment attention), "
            f"activations {_gb(r['activation_bytes'])} "
            f"({r['activation_bytes'] / seg['activation_bytes']:.2f}x), "
            f"peak RSS {_gb(r['peak_rss_bytes'])} ({r['peak_rss_bytes'] / seg['peak_rss_bytes']:.2f}x)"
        )
    # each rank keeps the LLM's activations of half the sequence (+ the encoder's, whole)
    assert all(r["activation_bytes"] < 0.8 * seg["activation_bytes"] for r in cp)


def test_encoder_balance_evens_the_views_per_rank(tmp_path):
    dp = _ranks(tmp_path, "dp", 2, 29642, threads=1, length=BALANCE_LENGTH)
    balanced = _ranks(tmp_path, "dp+balance", 2, 29643, threads=1, length=BALANCE_LENGTH)
    for label, ranks in (("off", dp), ("on", balanced)):
        views = [r["encoded_views"] for r in ranks]
        seconds = [r["encoder_s"] for r in ranks]
        step = max(r["step_s"] for r in ranks)
        print(
            f"\n[encoder balance {label}] views encoded per rank {views} "
            f"(max/mean {max(views) / (sum(views) / len(views)):.2f}), encoder s/step "
            f"{[round(s, 3) for s in seconds]}, slowest rank {step:.2f} s/step"
        )
    slow_off = max(r["step_s"] for r in dp)
    slow_on = max(r["step_s"] for r in balanced)
    print(f"[encoder balance] step time on / off: {slow_on / slow_off:.2f}x")
    views = [r["encoded_views"] for r in balanced]
    assert max(views) - min(views) <= 1 and [r["own_views"] for r in dp] == [
        r["own_views"] for r in balanced
    ]
