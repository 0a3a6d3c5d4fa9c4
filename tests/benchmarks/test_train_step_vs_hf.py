"""Training step of mmfw's model vs transformers' ``LlavaForConditionalGeneration`` built from
the same config and weights (``train_step_vs_hf.py``): tokens/s with the steps of the sides
alternated in one process (so machine load hits both alike), the ratio, and the memory a
step adds on top of the built models (each side in its own process: peak RSS during the
steps minus the peak before them).

Targets: ratio >= 1.0 (mmfw adds no overhead; asserted with a 10% noise margin) and, packing
the same variable-length samples, >= 1.3. All sides must compute the same loss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.bench
NAMES = {"hf": "transformers Llava", "mmfw": "mmfw", "mmfw_packed": "mmfw packed"}


def measure(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.train_step_vs_hf", *args],
        cwd=REPO, capture_output=True, text=True, env=os.environ.copy(), check=True, timeout=900,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_train_step_against_transformers():
    speed = measure("speed", "--steps", "12")
    memory = {side: measure("memory", side, "--steps", "3") for side in NAMES}
    sides = speed["sides"]
    print(
        f"\ntrain step (forward + backward), tiny LLaVA (ViT 64x2, Llama 256x4), 8 samples, "
        f"{speed['real_tokens']} real tokens, fp32 sdpa, median of 12 alternated steps"
    )
    print(f"{'side':<20}{'rows x len':>12}{'step s':>9}{'tokens/s':>10}{'step memory MB':>16}")
    for side, name in NAMES.items():
        r = sides[side]
        print(
            f"{name:<20}{r['rows']:>5} x {r['row_length']:<5}{r['median_step_s']:>9.3f}"
            f"{r['tokens_per_s']:>10.0f}{memory[side]['step_growth_mb']:>16.0f}"
        )
    base = sides["hf"]["tokens_per_s"]
    ratio, packed = (
        sides["mmfw"]["tokens_per_s"] / base,
        sides["mmfw_packed"]["tokens_per_s"] / base,
    )
    mem = memory["mmfw"]["step_growth_mb"] / memory["hf"]["step_growth_mb"]
    mem_packed = memory["mmfw_packed"]["step_growth_mb"] / memory["hf"]["step_growth_mb"]
    print(
        f"tokens/s mmfw / transformers: {ratio:.3f} (target >= 1.0); packed: {packed:.2f} (>= 1.3)"
    )
    print(f"step memory mmfw / transformers: {mem:.3f}; packed: {mem_packed:.3f}")
    losses = {side: r["loss"] for side, r in sides.items()}
    assert max(losses.values()) - min(losses.values()) < 1e-4, losses
    assert ratio >= 0.9
    assert packed >= 1.3
