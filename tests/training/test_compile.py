"""trainer.compile: every block compiled with torch.compile (inductor on this CPU), trained
with fixed shapes; the losses follow the eager run's and the checkpoint's names are eager's."""

from __future__ import annotations

import pytest
import torch

import mmfw
from mmfw.training.run import train
from tests.conftest import SMALL_TASK

FIXED = ["data.packing=true", "data.fixed_rows=2", "data.fixed_views=8", "data.batch_size=8"]


def _run(tmp_path, name, *overrides):
    cfg = mmfw.compose(
        ["experiment=tiny_llava", *SMALL_TASK, *FIXED, "logger=csv", "trainer.max_steps=3"]
        + ["evaluate.at_end=false", "trainer.enable_progress_bar=false", *overrides]
    )
    return train(cfg, tmp_path / name)


@pytest.mark.slow
def test_a_compiled_run_with_fixed_shapes_follows_the_eager_run(tmp_path):
    from torch._dynamo.utils import counters

    eager = _run(tmp_path, "eager")
    before = counters["stats"].get("unique_graphs", 0)
    compiled = _run(tmp_path, "compiled", "trainer.compile=true")
    assert counters["stats"].get("unique_graphs", 0) > before  # something was compiled
    assert compiled["batch/over_fixed_rows"] == 0 and compiled["step"] == 3
    assert abs(compiled["train/loss"] - eager["train/loss"]) < 1e-3
    eager_ckpt = torch.load(tmp_path / "eager" / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt = torch.load(tmp_path / "compiled" / "checkpoints" / "last.ckpt", weights_only=False)
    assert list(ckpt["state_dict"]) == list(eager_ckpt["state_dict"])
