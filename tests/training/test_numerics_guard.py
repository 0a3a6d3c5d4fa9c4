"""The numerics guard in real training runs: a NaN at step k stops the run at k naming the
batch's records (the last good checkpoint kept), ``skip_batch`` drops and counts such steps,
batches with every label masked and a first loss far above ln(vocab) stop the run."""

from __future__ import annotations

import json
import math

import pytest
import torch

import mmfw
from mmfw.data.collate import TrainingCollator
from mmfw.errors import UserError
from mmfw.training.module import VLMModule
from mmfw.training.numerics import NonFiniteError
from mmfw.training.run import train
from tests.helpers import IN_PROCESS_RUN

ARGS = [*IN_PROCESS_RUN, "checkpoint.every_n_train_steps=2", "trainer.max_steps=6"]


def nan_at(monkeypatch, steps: set[int]) -> None:
    """The training loss of the given steps becomes NaN (a fault injected into a real run)."""
    original = VLMModule._step

    def step(self, batch, prefix):
        loss = original(self, batch, prefix)
        if prefix == "train" and self.trainer.global_step in steps:
            loss = loss * float("nan")
            self.step_losses[-1] = loss.detach()
        return loss

    monkeypatch.setattr(VLMModule, "_step", step)


def test_a_nan_at_step_k_stops_at_k_naming_the_records_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    nan_at(monkeypatch, {3})
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"step 3: the loss is not finite") as info:
        train(mmfw.compose(ARGS), run_dir)
    assert info.value.step == 3 and len(info.value.ids) == 4  # the micro-batch's 4 records
    assert "last good checkpoint is" in str(info.value)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_step"] == 3
    assert record["failed_records"] == info.value.ids
    # Nothing was saved from the bad state: last.ckpt is the step-2 save and finite.
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )


def test_skip_batch_drops_and_counts_the_bad_steps_and_stops_past_the_cap(tmp_path, monkeypatch):
    nan_at(monkeypatch, {2, 4})
    metrics = train(mmfw.compose([*ARGS, "trainer.nan_policy=skip_batch"]), tmp_path / "a")
    assert metrics["step"] == 6 and metrics["train/nan_skipped"] == 2
    last = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )
    cfg = mmfw.compose([*ARGS, "trainer.nan_policy=skip_batch", "trainer.nan_max_skips=1"])
    with pytest.raises(NonFiniteError, match=r"step 4: .*trainer.nan_max_skips=1"):
        train(cfg, tmp_path / "b")


def test_batches_with_every_label_masked_stop_the_run_naming_the_template(tmp_path, monkeypatch):
    original = TrainingCollator.__call__

    def masked(self, samples):
        batch = original(self, samples)
        if batch.get("labels") is not None:
            batch["labels"].fill_(-100)  # a template whose masking hides every answer
        return batch

    monkeypatch.setattr(TrainingCollator, "__call__", masked)
    with pytest.raises(UserError, match=r"no target token.*template.*label masking"):
        train(mmfw.compose(ARGS), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and "no target token" in record["error"]


def test_a_first_loss_far_above_ln_vocab_names_a_broken_init(tmp_path):
    cfg = mmfw.compose([*ARGS, "+llm.config.initializer_range=1.0"])
    with pytest.raises(UserError, match=r"ln\(vocab \d+\).*broken.*tokenizer"):
        train(cfg, tmp_path / "run")


def test_a_healthy_start_passes_the_first_loss_check(tmp_path):
    metrics = train(mmfw.compose([*ARGS, "trainer.max_steps=3"]), tmp_path / "run")
    vocab = json.loads((tmp_path / "run" / "tokenizer" / "tokenizer.json").read_text())
    assert metrics["train/loss"] < 3 * math.log(len(vocab["model"]["vocab"]) + 8)
    assert metrics["train/nan_skipped"] == 0
