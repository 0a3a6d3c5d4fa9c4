"""The fault table: a kill during a checkpoint write, a full disk or an I/O error during a
save, SIGTERM during the end-of-training evaluation, wandb failing mid-run. In each case
nothing already done is lost and the run says what happened."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import mmfw
from mmfw.run_dir.checkpoints import CheckpointWriteError
from mmfw.training.run import train
from tests.conftest import REPO
from tests.helpers import IN_PROCESS_RUN

ARGS = [*IN_PROCESS_RUN, "checkpoint.every_n_train_steps=2", "trainer.max_steps=6"]


def child(run_dir, body: str, args: list[str]) -> subprocess.CompletedProcess:
    """``train`` in a fresh Python process with a fault set up by ``body`` first."""
    script = (
        textwrap.dedent(
            """
        import os, signal, sys, time
        import torch
        import mmfw
        from mmfw.training.run import train
        args, run_dir = sys.argv[2:], sys.argv[1]
        """
        )
        + textwrap.dedent(body)
        + "\ntrain(mmfw.compose(args), run_dir)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(run_dir), *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip


def step_of(path) -> int:
    return int(torch.load(path, weights_only=True, map_location="cpu")["global_step"])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_full_disk_or_io_error_during_a_save_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, code
):
    real = torch.save

    def failing(obj, f, *a, **kw):
        if isinstance(obj, dict) and obj.get("global_step", 0) >= 4:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(code, os.strerror(code))
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", failing)
    run_dir = tmp_path / "run"
    with pytest.raises(CheckpointWriteError, match=os.strerror(code)) as info:
        train(mmfw.compose(ARGS), run_dir)
    assert "the newest intact checkpoint is" in str(info.value)  # step000004: a new name
    assert step_of(run_dir / "checkpoints" / "last.ckpt") == 2  # intact, loadable
    assert not list((run_dir / "checkpoints").glob(".*tmp*"))  # no half file left behind
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and os.strerror(code) in record["error"]
    monkeypatch.setattr(torch, "save", real)
    metrics = train(mmfw.compose([*ARGS, "resume=auto"]), run_dir)  # space is back
    assert metrics["step"] == 6


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_and_resume_continues(
    tmp_path,
):
    run_dir = tmp_path / "run"
    out = child(
        run_dir,
        """
        real = torch.save
        def killing(obj, f, *a, **kw):
            if isinstance(obj, dict) and obj.get("global_step", 0) >= 4:
                f.write(b"PK\\x03\\x04 half")
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(obj, f, *a, **kw)
        torch.save = killing
        """,
        ARGS,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert list((run_dir / "checkpoints").glob(".*.tmp-*"))  # the write it died in
    assert step_of(run_dir / "checkpoints" / "last.ckpt") == 2
    metrics = train(mmfw.compose([*ARGS, "resume=auto"]), run_dir)
    assert metrics["step"] == 6
    assert not list((run_dir / "checkpoints").glob(".*.tmp-*"))  # cleaned by the next save
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and len(record["attempts"]) == 2


def test_sigterm_during_the_final_evaluation_keeps_training_and_resume_evaluates(tmp_path):
    run_dir = tmp_path / "run"
    args = [a for a in ARGS if a != "evaluate.at_end=false"]
    out = child(
        run_dir,
        """
        import mmfw.training.run as run
        def interrupted(*a, **kw):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        run.evaluate_benchmark = interrupted
        """,
        args,
    )
    assert out.returncode == 143, out.stderr[-2000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and "evaluation" in record["error"]
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert trained["step"] == 6 and "train/loss" in trained
    assert not any(k.startswith("synthetic_magnifier/") for k in trained)
    metrics = train(mmfw.compose([*args, "resume=auto"]), run_dir)
    assert "synthetic_magnifier/accuracy" in metrics
    assert metrics["train/loss"] == trained["train/loss"]  # the training's numbers, kept
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_wandb_failing_mid_run_does_not_stop_training_and_the_csv_is_complete(
    tmp_path, monkeypatch, capsys
):
    from lightning.pytorch.loggers import WandbLogger

    real, calls = WandbLogger.log_metrics, []

    def flaky(self, metrics, step=None):
        calls.append(step)
        if len(calls) > 3:
            raise ConnectionError("wandb: network is down")
        return real(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", flaky)
    args = [a if a != "logger=csv" else "logger=wandb" for a in ARGS]
    metrics = train(mmfw.compose(args), tmp_path / "run")
    assert metrics["step"] == 6
    assert "wandb failed during log_metrics (ConnectionError" in capsys.readouterr().err
    assert len(calls) == 4  # off after the first failure
    rows = csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open())
    assert sorted({int(r["step"]) for r in rows if r.get("train/loss")}) == list(range(6))
