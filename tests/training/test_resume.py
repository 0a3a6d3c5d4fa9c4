"""Exact resume: a run killed at any moment (SIGKILL, a truncated checkpoint, a SLURM
pre-emption signal) and resumed with ``resume=auto`` ends with bit-identical weights."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import BIN, REPO, SMALL_TASK, run_cli

# Gradient accumulation 2, so kills also land between the micro-batches of one step.
COMMON = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "data.batch_size=4",
    "data.global_batch_size=8",
    "checkpoint.every_n_train_steps=3",
    "logger=csv",
    "evaluate.at_end=false",
    "trainer.enable_progress_bar=false",
]
STEPS = 24


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == STEPS
    return ckpt["state_dict"]


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    run_cli("mmfw-train", *COMMON, f"trainer.max_steps={STEPS}", f"hydra.run.dir={run_dir}")
    return weights(run_dir)


def start(run_dir: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(BIN / "mmfw-train"),
            *COMMON,
            f"trainer.max_steps={STEPS}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, (
            f"the run ended before {path.name}: {proc.stderr.read()[-2000:]}"
        )
        assert time.monotonic() < deadline
        time.sleep(0.02)


def resume(run_dir: Path) -> subprocess.CompletedProcess:
    return run_cli(
        "mmfw-train",
        *COMMON,
        f"trainer.max_steps={STEPS}",
        "resume=auto",
        f"hydra.run.dir={run_dir}",
    )


def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(reference, tmp_path):
    delay = random.Random(os.getpid()).uniform(0.0, 0.8)
    proc = start(tmp_path)
    wait_for(tmp_path / "checkpoints" / "step000003.ckpt", proc)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert (
        json.loads((tmp_path / "run.json").read_text())["status"] == "running"
    )  # it never got to say
    out = resume(tmp_path)
    assert "Restoring states from the checkpoint path" in out.stdout + out.stderr
    assert_identical(weights(tmp_path), reference)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow  # the default suite stays under 15 minutes; make test-full runs it
def test_a_truncated_last_ckpt_falls_back_to_the_newest_intact_one(reference, tmp_path):
    run_cli("mmfw-train", *COMMON, f"trainer.max_steps={STEPS}", f"hydra.run.dir={tmp_path}")
    folder = tmp_path / "checkpoints"
    for late in ("step000024.ckpt", "step000021.ckpt"):  # as if the run had died at step 20
        (folder / late).unlink()
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])  # a kill mid-copy
    out = resume(tmp_path)
    assert "last.ckpt is incomplete or corrupt; resuming from" in out.stderr
    assert "step000018.ckpt" in out.stderr
    assert_identical(weights(tmp_path), reference)


def test_slurm_preemption_signal_saves_requeues_and_resumes_exactly(reference, tmp_path):
    """SIGUSR1 (sbatch --signal=USR1@90) under a SLURM job: the step in flight finishes,
    last.ckpt is written, run.json says interrupted, `scontrol requeue <job>` runs."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "scontrol.log"
    scontrol = bindir / "scontrol"  # stands in for SLURM's command, which this machine lacks
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    run_dir = tmp_path / "run"
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}
    proc = start(run_dir, env)
    wait_for(run_dir / "checkpoints" / "step000003.ckpt", proc)
    proc.send_signal(signal.SIGUSR1)
    proc.wait(timeout=120)
    stderr = proc.stderr.read()
    assert proc.returncode == 143, stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted"
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 3 <= step < STEPS
    assert log.read_text().split() == ["requeue", "4242"]
    resume(run_dir)  # what the requeued job runs
    assert_identical(weights(run_dir), reference)


SHARDED = {
    "fsdp": ["trainer=fsdp", "trainer.strategy.param_dtype=null"],
    "deepspeed_zero3": ["trainer=deepspeed_zero3"],
}


@pytest.mark.parametrize(
    "strategy",
    [pytest.param(s, marks=pytest.mark.slow) for s in ("fsdp", "deepspeed_zero3")],
)
def test_sharded_run_stopped_by_sigterm_resumes_exactly(strategy, tmp_path):
    """2 ranks; SIGTERM to rank 0 reaches both, they finish the step, save their shards
    together; resume=auto continues from the sharded folder to the same weights."""
    args = [
        "experiment=tiny_llava",
        *SMALL_TASK,
        *SHARDED[strategy],
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "data.batch_size=4",
        "data.global_batch_size=8",
        "trainer.max_steps=10",
        "checkpoint.every_n_train_steps=2",
        "logger=csv",
        "evaluate.at_end=false",
        "trainer.enable_progress_bar=false",
    ]
    run_cli("mmfw-train", *args, f"hydra.run.dir={tmp_path / 'ref'}")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [str(BIN / "mmfw-train"), *args, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(run_dir / "checkpoints" / "step000002.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)
    assert proc.returncode == 143, proc.stderr.read()[-3000:]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    run_cli("mmfw-train", *args, "resume=auto", f"hydra.run.dir={run_dir}")
    from mmfw.run_dir.checkpoints import read_checkpoint

    ref = read_checkpoint(tmp_path / "ref" / "checkpoints" / "last.ckpt")
    got = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert got["global_step"] == ref["global_step"] == 10
    assert_identical(got["state_dict"], ref["state_dict"])
