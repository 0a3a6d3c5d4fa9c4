"""The tiny twin of every resolution strategy trains a few real steps (in-process Lightning)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmfw
from mmfw.config import CONF_DIR
from mmfw.training.run import train
from tests.conftest import SMALL_TASK

TWINS = sorted(p.stem for p in (Path(CONF_DIR) / "resolution").glob("tiny_*.yaml"))
CONNECTOR = {"tiny_hd9": "token_merge"}  # IXC merges 2x2 tokens


@pytest.mark.parametrize("resolution", TWINS)
def test_tiny_twin_trains(resolution, tmp_path):
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            f"resolution={resolution}",
            f"connector={CONNECTOR.get(resolution, 'mlp2x_gelu')}",
            "logger=csv",
            "data.batch_size=4",
            "trainer.max_steps=3",
            "trainer.enable_progress_bar=false",
            "benchmarks.synthetic_magnifier.max_samples=4",
        ]
    )
    metrics = train(cfg, tmp_path)
    assert metrics["step"] == 3
    assert metrics["train/loss"] > 0 and metrics["synthetic_magnifier/accuracy"] is not None
    assert json.loads((tmp_path / "metrics.json").read_text())["step"] == 3
