"""Callbacks are a config group: a user adds a Lightning callback or drops one by override;
the run's statistics callbacks are required."""

from __future__ import annotations

import csv

import pytest

import mmfw
from mmfw.errors import UserError
from mmfw.training.run import train
from tests.helpers import IN_PROCESS_RUN

ARGS = [*IN_PROCESS_RUN, "trainer.max_steps=3"]


def test_a_lightning_callback_added_by_override_runs(tmp_path):
    cfg = mmfw.compose(
        [
            *ARGS,
            "+callbacks.lr={_target_: lightning.pytorch.callbacks.LearningRateMonitor}",
            "~callbacks.report_setup",
        ]  # fmt: skip
    )
    train(cfg, tmp_path / "run")
    header = next(csv.reader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    assert any(h.startswith("lr-") for h in header)  # LearningRateMonitor logged
    assert not (tmp_path / "run" / "optimizer_groups.json").exists()  # report_setup dropped


def test_the_statistics_callbacks_are_required(tmp_path):
    with pytest.raises(UserError, match=r"callbacks.data \(DataStats\) is needed"):
        train(mmfw.compose([*ARGS, "~callbacks.data"]), tmp_path / "run")
