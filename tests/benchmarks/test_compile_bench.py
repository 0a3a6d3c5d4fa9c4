"""trainer.compile vs eager on this CPU, with packing's variable shapes and with fixed budgets
(``data.fixed_rows`` / ``data.fixed_views``): each side in its own process on the same
stream of distinct micro-batches (``compile_bench.py``).

Run with ``make bench``. Prints the first step (compilation included), the median step and
real tokens/s, and the ratios against eager packing measured in the same run; asserts only
that all sides computed the same loss (the same job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.bench
WORKER = REPO / "tests" / "benchmarks" / "compile_bench.py"
STEPS = 12
SIDES = [("eager", "packed"), ("eager", "fixed"), ("compile", "packed"), ("compile", "fixed")]


def test_compile_against_eager_with_and_without_fixed_budgets(tmp_path):
    out = tmp_path / "sides.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for mode, shapes in SIDES:
        cmd = [sys.executable, str(WORKER), str(out), mode, shapes, str(STEPS)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-4000:]
    rows = {(r["mode"], r["shapes"]): r for r in map(json.loads, out.read_text().splitlines())}
    base = rows[("eager", "packed")]["tokens_per_s"]
    print(
        f"\n[compile] tiny LLaVA-NeXT (Llama 256 x 4, anyres views), {STEPS} distinct "
        "micro-batches of 8 samples packed into rows of <= 1024 tokens; fixed: 3 x 1024 tokens, "
        "16 views per encoder call"
    )
    print(
        f"{'side':<18}{'shapes':>12}{'first step s':>14}{'median s':>10}{'tokens/s':>10}{'vs eager packed':>17}{'graphs':>8}"
    )
    for (mode, shapes), r in rows.items():
        kinds = len(r["row_shapes"])
        print(
            f"{mode + ' ' + shapes:<18}{kinds:>6} kinds{r['first_step_s']:>14.2f}"
            f"{r['median_step_s']:>10.3f}{r['tokens_per_s']:>10.0f}"
            f"{r['tokens_per_s'] / base:>16.2f}x{r['graphs']:>8}"
        )
    losses = [r["loss"] for r in rows.values()]
    assert max(losses) - min(losses) < 1e-3, losses
    assert len(rows[("eager", "fixed")]["row_shapes"]) == 1
