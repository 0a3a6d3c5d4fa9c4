"""SLURM pre-emption: the warning signal becomes a graceful stop, a checkpoint and a requeue.

SLURM warns a job before pre-emption or its time limit with a signal (``--signal=USR1@90``
for sbatch scripts; submitit, used by ``hydra/launcher=slurm``, sends USR2). mmfw turns that
warning into Lightning's SIGTERM path: the step in flight finishes, every rank stops together,
``last.ckpt`` is written, ``run.json`` says ``interrupted``; then rank 0 requeues the job
(``scontrol requeue``, or submitit's own requeue), whose ``resume=auto`` continues the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

WARNING_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


class Preemption:
    """Installs the warning-signal handlers for the duration of a fit."""

    def __init__(self, requeue: bool = True) -> None:
        self.requeue_enabled = requeue
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in WARNING_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.received = signum
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning: finish the step, stop, save

    def requeue(self, is_rank_zero: bool) -> str:
        """After the checkpoint is written: hand the job back to the scheduler."""
        if self.received is None:
            return "not pre-empted"
        previous = self._previous.get(self.received)
        if callable(previous):  # submitit's handler checkpoints its own submission and requeues
            previous(self.received, None)
            return "requeued by submitit"
        job = os.environ.get("SLURM_JOB_ID")
        if not (self.requeue_enabled and job and is_rank_zero):
            return "not requeued (no SLURM job, requeue off, or not rank 0)"
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        if array:
            job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if result.returncode:
            print(f"mmfw: scontrol requeue {job} failed: {result.stderr.strip()}", file=sys.stderr)
            return f"requeue of {job} failed"
        return f"requeued SLURM job {job}"
