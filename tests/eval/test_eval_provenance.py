"""Evaluation knows what it evaluated (checkpoint, step, the run's status), writes elsewhere
with out=DIR, evaluates a live run at its newest intact checkpoint, and shared runs work:
checkpoints take the umask, an unreadable checkpoint is named as such, an unwritable run dir
is refused before anything starts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import mmfw
from mmfw.cli.eval import validate_eval
from mmfw.cli.preflight import guard_run_dir
from mmfw.errors import UserError
from mmfw.run_dir.checkpoints import atomic_torch_save, umask
from mmfw.training.run import train
from tests.conftest import run_cli
from tests.helpers import IN_PROCESS_RUN, tree

ARGS = [*IN_PROCESS_RUN, "evaluate.at_end=true", "trainer.max_steps=2",
        "checkpoint.every_n_train_steps=2"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("provenance") / "run"
    train(mmfw.compose(ARGS), out)
    return out


def test_the_end_of_training_evaluation_records_checkpoint_step_and_status(run_dir):
    m = json.loads((run_dir / "eval" / "synthetic_magnifier" / "metrics.json").read_text())
    assert m["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert m["step"] == 2 and m["run_status"] == "running"  # evaluated before the run ended


def test_mmfw_eval_out_writes_elsewhere_and_records_what_it_evaluated(run_dir, tmp_path):
    before = tree(run_dir)
    run_cli("mmfw-eval", f"run={run_dir}", f"out={tmp_path / 'out'}")
    m = json.loads((tmp_path / "out" / "synthetic_magnifier" / "metrics.json").read_text())
    assert m["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert m["step"] == 2 and m["run_status"] == "finished"
    assert tree(run_dir) == before  # nothing written into the run


def test_a_live_run_is_evaluated_at_its_newest_intact_checkpoint(run_dir, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(run_dir, live)
    record = json.loads((live / "run.json").read_text())
    (live / "run.json").write_text(json.dumps({**record, "status": "running"}))
    (live / "checkpoints" / "last.ckpt").unlink()  # not written yet by the live run
    out = run_cli("mmfw-eval", f"run={live}")
    assert "is still running" in out.stderr and "step000002.ckpt" in out.stderr
    m = json.loads((live / "eval" / "synthetic_magnifier@step2" / "metrics.json").read_text())
    assert m["checkpoint"].endswith("step000002.ckpt") and m["run_status"] == "running"


def test_checkpoints_take_the_umask_not_the_temporary_files_0600(run_dir, tmp_path):
    mode = (run_dir / "checkpoints" / "last.ckpt").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask()
    old = os.umask(0o002)  # a shared group run
    try:
        atomic_torch_save({"x": 1}, tmp_path / "shared.ckpt")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.ckpt").stat().st_mode & 0o777 == 0o664


def _deny(monkeypatch, path: Path, mode: int) -> None:
    """This user lacks ``mode`` on ``path`` (tests run as root, whom chmod does not stop)."""
    real = os.access

    def access(p, m, *a, **kw):
        return False if Path(p) == path and m & mode else real(p, m, *a, **kw)

    monkeypatch.setattr(os, "access", access)


def test_an_unreadable_checkpoint_is_named_unreadable_not_corrupt(run_dir, monkeypatch):
    _deny(monkeypatch, run_dir / "checkpoints" / "last.ckpt", os.R_OK)
    problems = validate_eval(mmfw.compose([f"run={run_dir}"], config_name="eval"))
    assert any("not readable by this user (permission denied" in p for p in problems)
    assert not any("corrupt" in p for p in problems)


def test_unwritable_run_dirs_are_refused_before_anything_starts(run_dir, monkeypatch, tmp_path):
    _deny(monkeypatch, run_dir / "eval", os.W_OK)
    problems = validate_eval(mmfw.compose([f"run={run_dir}"], config_name="eval"))
    assert any("not writable" in p and "out=" in p for p in problems)
    assert not validate_eval(mmfw.compose([f"run={run_dir}", f"out={tmp_path}"], "eval"))
    _deny(monkeypatch, tmp_path, os.W_OK)
    with pytest.raises(UserError, match=r"hydra.run.dir=.*not writable.*nothing was started"):
        guard_run_dir([*ARGS, f"hydra.run.dir={tmp_path / 'new'}"], False)
