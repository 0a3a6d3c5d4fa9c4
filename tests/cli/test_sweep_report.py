"""A real sweep (mmfw-train -m) and its config-diff report (mmfw-report)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SMALL_TASK, run_cli


@pytest.mark.slow  # the default suite stays under 12 minutes; make test-full runs it
def test_connector_sweep_report_names_exactly_the_swept_key(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "mmfw-train",
        "-m",
        "experiment=tiny_llava",
        "connector=linear,mlp2x_gelu",
        *SMALL_TASK,
        "data.batch_size=4",
        "trainer.max_steps=2",
        "benchmarks.synthetic_magnifier.max_samples=8",
        f"hydra.sweep.dir={sweep}",
    )
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "0",
        "1",
    ]
    out = run_cli("mmfw-report", str(sweep))
    report = json.loads((sweep / "report.json").read_text())
    assert report["differing_keys"] == ["connector"]
    assert [r["values"]["connector"] for r in report["runs"]] == ["linear", "mlp2x_gelu"]
    assert all(
        isinstance(r["metrics"]["synthetic_magnifier/accuracy"], float) for r in report["runs"]
    )
    md = (sweep / "report.md").read_text()
    assert "| connector |" in md.splitlines()[4] or "connector" in md
    assert "mlp2x_gelu" in out.stdout
    assert (sweep / "report.html").exists()
    # After 2 steps both connectors may answer alike: a metric equal in every run is named, not
    # plotted; otherwise it gets its figure.
    constant = "synthetic_magnifier/accuracy" in report["constant_metrics"]
    assert (sweep / "figures" / "synthetic_magnifier_accuracy.png").exists() != constant
    # Each sweep job is its own wandb run, grouped by the sweep.
    assert all(len(list((sweep / j / "wandb").glob("offline-run-*"))) == 1 for j in ("0", "1"))


@pytest.mark.slow  # the default suite stays under 15 minutes; make test-full runs it
def test_a_swept_task_key_is_named_once_not_in_each_interpolated_copy(tmp_path):
    # synthetic.* is copied (${synthetic}) into data.sources.*.generator and the benchmark
    sweep = tmp_path / "sweep"
    run_cli("mmfw-train", "-m", "experiment=tiny_llava", "synthetic.object_size=4,6", *SMALL_TASK,
            "data.batch_size=4", "trainer.max_steps=2", "logger=csv",
            "benchmarks.synthetic_magnifier.max_samples=8", f"hydra.sweep.dir={sweep}")  # fmt: skip
    run_cli("mmfw-report", str(sweep))
    report = json.loads((sweep / "report.json").read_text())
    assert report["differing_keys"] == ["synthetic.object_size"]
    assert [r["values"] for r in report["runs"]] == [
        {"synthetic.object_size": 4},
        {"synthetic.object_size": 6},
    ]
