"""Run directories protect themselves: never overwritten, resumed by name, history kept."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import BIN, REPO, SMALL_TASK, run_cli
from tests.helpers import tree

ARGS = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "data.batch_size=4",
    "trainer.log_every_n_steps=1",
    "checkpoint.every_n_train_steps=5",
    "evaluate.at_end=false",
    "trainer.enable_progress_bar=false",
    "logger=wandb",
]


@pytest.mark.slow  # the default suite stays under 15 minutes; make test-full runs it
def test_rerunning_into_a_finished_run_is_refused_and_it_stays_byte_for_byte(tmp_path):
    run_cli("mmfw-train", *ARGS, "trainer.max_steps=2", f"hydra.run.dir={tmp_path}")
    before = tree(tmp_path)
    out = run_cli(
        "mmfw-train", *ARGS, "trainer.max_steps=4", f"hydra.run.dir={tmp_path}", check=False
    )
    assert out.returncode == 2
    assert f"hydra.run.dir={tmp_path} already holds a finished run" in out.stderr
    assert "resume=auto" in out.stderr and "Traceback" not in out.stderr
    assert tree(tmp_path) == before


@pytest.mark.slow  # the default suite stays under 15 minutes; make test-full runs it
def test_sigkill_then_resume_auto_finds_the_run_by_name_and_keeps_its_history(tmp_path):
    common = [*ARGS, "trainer.max_steps=30", "name=history", f"paths.runs={tmp_path}"]
    proc = subprocess.Popen([str(BIN / "mmfw-train"), *common], cwd=REPO, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300

    def logged_past_the_checkpoint() -> bool:
        if not list(tmp_path.glob("history/*/checkpoints/step000010.ckpt")):
            return False
        rows = csv.DictReader(next(tmp_path.glob("history/*/csv/metrics.csv")).open())
        return any(r.get("train/loss") and int(r["step"]) >= 11 for r in rows)

    while not logged_past_the_checkpoint():  # killed after steps it must replay were logged
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = tmp_path.glob("history/*")
    out = run_cli("mmfw-train", *common, "resume=auto")
    assert f"resume=auto: continuing {run_dir}" in out.stdout
    assert [p.name for p in tmp_path.glob("history/*")] == [run_dir.name]  # no second run dir
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and len(record["attempts"]) == 2
    assert record["attempts"][1]["status"] == "finished"
    assert "resume=auto" in record["attempts"][1]["overrides"]
    rows = [
        r for r in csv.DictReader((run_dir / "csv" / "metrics.csv").open()) if r.get("train/loss")
    ]
    assert [int(r["step"]) for r in rows] == list(range(30))  # every step exactly once
    # The rows the killed run logged after its checkpoint were replayed, and kept aside.
    superseded = list((run_dir / "csv").glob("metrics.superseded-*.csv"))
    assert superseded and all(
        int(r["step"]) >= 10 for r in csv.DictReader(superseded[0].open()) if r.get("train/loss")
    )
    # wandb continues the same run id.
    ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert ids == {record["wandb_id"]}
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2


def test_resume_auto_with_nothing_to_resume_says_so_and_starts(tmp_path):
    out = run_cli(
        "mmfw-train",
        *ARGS,
        "trainer.max_steps=1",
        "name=fresh",
        f"paths.runs={tmp_path}",
        "resume=auto",
    )
    assert (
        "resume=auto: no unfinished run of this name to continue; starting a new run" in out.stdout
    )
    assert len(list(tmp_path.glob("fresh/*/run.json"))) == 1
