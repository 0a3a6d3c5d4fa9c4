"""mmfw-report on a hand-built Optuna sweep (the files hydra-optuna-sweeper and mmfw-train
write): the Optuna section names direction, objective and best trial, and ranks the trials."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mmfw.report.build import build_report
from tests.report.test_report import make_run

# (stage.lr, optim.warmup_ratio, synthetic_magnifier/accuracy); None: a failed trial
TRIALS = [(1e-4, 0.10, 0.30), (3e-3, 0.05, 0.90), (1e-3, 0.20, 0.60), (5e-3, 0.0, None)]


def make_sweep(root: Path, direction: str = "maximize", objective: str | None = None) -> Path:
    """Trials 0..3 as mmfw-train writes them, plus the sweeper's optimization_results.yaml
    (its format, copied from a real `hydra/sweeper=optuna_maximize` sweep)."""
    sweep = root / "sweep"
    for i, (lr, warmup, acc) in enumerate(TRIALS):
        config = {"stage": {"lr": lr}, "optim": {"warmup_ratio": warmup}, "objective": objective,
                  "trainer": {"max_steps": 150}}  # fmt: skip
        metrics = None if acc is None else {"step": 150, "train/loss": 1.0 - acc, "val/loss": 2 - acc,
                                            "synthetic_magnifier/accuracy": acc,
                                            "synthetic_magnifier/chance": 0.25}  # fmt: skip
        run = make_run(sweep, str(i), config, metrics, status="finished" if acc else "failed",
                       error=None if acc else "RuntimeError: loss is nan")  # fmt: skip
        hydra = {"hydra": {"sweeper": {"direction": direction, "study_name": "mmfw"}}}
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    objective_of = (lambda t: 2 - t[2]) if objective == "val/loss" else (lambda t: t[2])
    done = [t for t in TRIALS if t[2] is not None]
    best = (max if direction == "maximize" else min)(done, key=objective_of)
    (sweep / "optimization_results.yaml").write_text(
        "name: optuna\nbest_params:\n"
        f"  stage.lr: {best[0]}\n  optim.warmup_ratio: {best[1]}\nbest_value: {objective_of(best)}\n"
    )
    return sweep


def test_optuna_section_and_json_for_a_maximising_sweep(tmp_path):
    sweep = make_sweep(tmp_path)
    build_report([sweep], tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["optuna"] == {
        "best_params": {"stage.lr": 3e-3, "optim.warmup_ratio": 0.05},
        "best_value": 0.9,
        "direction": "maximize",
        "sweep_dir": str(sweep),
        "objective": "synthetic_magnifier/accuracy",
        "error": None,
    }
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Optuna: best trial" in md
    assert f"| {sweep} | maximize | synthetic_magnifier/accuracy | 0.9 | 0.003 | 0.05 |" in md
    trials = md.split("## Optuna: trials (maximize synthetic_magnifier/accuracy, best first)")[1]
    table = [line for line in trials.split("\n\n")[1].splitlines()[2:]]
    assert [row.split(" | ")[0] for row in table] == ["| 1", "| 2", "| 0", "| 3"]  # failed last
    assert table[0] == "| 1 | 0.9 | 0.003 | 0.05 | finished |"
    assert table[-1] == "| 3 | — | 0.005 | 0 | failed |"
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>Optuna: best trial</h2>" in page and "<td>0.003</td>" in page


def test_a_minimising_sweep_ranks_ascending_and_plain_sweeps_have_no_optuna(tmp_path):
    sweep = make_sweep(tmp_path, direction="minimize", objective="val/loss")
    build_report([sweep / "0", sweep / "1", sweep / "2"], tmp_path / "out")  # runs, not the sweep
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["optuna"]["direction"] == "minimize" and data["optuna"]["objective"] == "val/loss"
    assert data["optuna"]["best_value"] == 1.1
    md = (tmp_path / "out" / "report.md").read_text()
    trials = md.split("## Optuna: trials (minimize val/loss, best first)")[1].split("\n\n")[1]
    assert [row.split(" | ")[1] for row in trials.splitlines()[2:]] == ["1.1", "1.4", "1.7"]
    (sweep / "optimization_results.yaml").unlink()
    build_report([sweep], tmp_path / "plain")
    assert "optuna" not in json.loads((tmp_path / "plain" / "report.json").read_text())
    assert "Optuna" not in (tmp_path / "plain" / "report.md").read_text()
