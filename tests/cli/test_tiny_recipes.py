"""Every tiny twin of the seed recipes trains through mmfw-train (one real sweep)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmfw.config import CONF_DIR
from tests.conftest import SMALL_TASK, run_cli

TWINS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("tiny_*.yaml"))


@pytest.mark.slow  # ~60 s: the default suite stays near its budget; make test-full runs it
def test_every_tiny_recipe_trains(tmp_path):
    assert {
        "tiny_llava15_7b",
        "tiny_otterhd_8b",
        "tiny_mm15_3b",
        "tiny_mplug_owl3_7b",
        "tiny_ixc2_4khd_7b",
    } <= set(TWINS)
    sweep = tmp_path / "twins"
    run_cli(
        "mmfw-train",
        "-m",
        f"experiment={','.join(TWINS)}",
        *SMALL_TASK,
        "trainer.max_steps=3",
        "data.batch_size=4",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "benchmarks.synthetic_magnifier.max_samples=8",
        f"hydra.sweep.dir={sweep}",
    )
    for i, name in enumerate(TWINS):
        run = sweep / str(i)
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["step"] == 3 and metrics["train/loss"] > 0, name
        assert (run / "checkpoints" / "last.ckpt").exists(), name
    out = run_cli("mmfw-report", str(sweep))
    assert "experiment" in json.loads((sweep / "report.json").read_text())["differing_keys"]
    assert "tiny_mplug_owl3_7b" in out.stdout
