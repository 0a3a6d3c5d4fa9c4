"""experiments/*/run.sh through experiments/study.sh: SEEDS=... re-runs a study's sweep with
other seeds into runs/studies/, reports its verdicts there, and leaves the committed report as it
is; the headline printer reads the verdicts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, SMALL_TASK

TINY = [*SMALL_TASK, "trainer.max_steps=2", "data.batch_size=4", "encoder.pretrained.steps=2",
        "encoder.pretrained.batch_size=2", "benchmarks.synthetic_magnifier.max_samples=8"]  # fmt: skip


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow  # ~50 s: two sweep jobs and two reports; make test-full runs it
def test_other_seeds_leave_the_committed_report_untouched(tmp_path):
    committed = REPO / "experiments" / "negative_control" / "report"
    before = _digest(committed) if committed.exists() else {}
    env = {**os.environ, "SEEDS": "5", "MMFW_RUNS": str(tmp_path / "runs")}
    proc = subprocess.run(
        ["bash", "experiments/negative_control/run.sh", *TINY],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    # The study's own summary may fail "no group above chance" at 2 steps; the sweep must run.
    assert "experiments/negative_control/report is left as committed" in proc.stdout, proc.stderr
    assert (_digest(committed) if committed.exists() else {}) == before
    (sweep,) = (tmp_path / "runs" / "studies").glob("negative_control_*")
    report = json.loads((sweep / "report" / "report.json").read_text())
    runs = report["runs"]
    assert len(runs) == 2 and {r["config"].get("data.seed") for r in runs} == {100, 200}
    for run in runs:
        config = (sweep / "report" / run["dir"] / ".hydra" / "config.yaml").read_text()
        assert "\nseed: 5\n" in f"\n{config}"
    assert report["baseline_group"].startswith("data.seed=100")
    assert "baseline group: data.seed=100" in proc.stdout  # the headline printer ran
