"""experiments/*/run.sh through experiments/study.sh: SEEDS=... re-runs a study's sweep with
other seeds into runs/studies/, reports its verdicts there, and leaves the committed report as it
is; the headline printer reads the verdicts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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


def test_the_headline_matches_an_expected_verdict_whatever_the_case_of_a_boolean(tmp_path):
    """Hydra's `false` in run.sh's --expect names the group the report keys as False."""
    metric = "synthetic_magnifier/accuracy"

    def group(value: bool, mean: float, verdict: dict | None) -> dict:
        return {"key": {"resolution.global_view": value}, "n": 5, "mean": {metric: mean},
                "std": {metric: 0.05}, "is_baseline": verdict is None,
                "vs_baseline": {metric: verdict} if verdict else {}}  # fmt: skip

    lower = {"delta": -0.3, "ci95": [-0.4, -0.2], "p": 0.001, "verdict": "lower"}
    report = {"root": "..", "differing_keys": ["resolution.global_view", "seed"],
              "baseline_group": "resolution.global_view=True",
              "groups": [group(True, 0.9, None), group(False, 0.6, lower)],
              "runs": [{"dir": "0", "status": "finished"}]}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    script = REPO / "experiments" / "summary.py"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path), metric,
         "--expect", "resolution.global_view=false=lower",
         "--expect", "resolution.global_view=false=higher"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "\nREPRODUCED: resolution.global_view=false against the baseline: lower" in out
    assert "NOT REPRODUCED: resolution.global_view=false against the baseline: lower (the " \
        "paper's direction: higher)" in out  # fmt: skip
