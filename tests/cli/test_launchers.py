"""Cluster launch: every trainer composes with a real-size recipe, the SLURM launcher turns
into the right sbatch request, submitit_local really runs a sweep, optuna really tunes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mmfw.config import CONF_DIR
from tests.conftest import SMALL_TASK, run_cli

TRAINERS = sorted(p.stem for p in (Path(CONF_DIR) / "trainer").glob("*.yaml"))
TINY = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "data.batch_size=4",
    "trainer.max_steps=3",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "benchmarks.synthetic_magnifier.max_samples=4",
]


@pytest.mark.parametrize("trainer", TRAINERS)
def test_real_size_recipe_composes_with_every_trainer(trainer):
    out = run_cli("mmfw-train", "experiment=llava15_7b", f"trainer={trainer}", "--cfg", "job")
    cfg = yaml.safe_load(out.stdout)
    assert cfg["name"] == "llava15_7b"
    assert cfg["trainer"]["_target_"] == "mmfw.training.trainer.TrainerSpec"


def test_slurm_launcher_composes_and_requests_the_trainer_layout(tmp_path, monkeypatch):
    out = run_cli(
        "mmfw-train",
        "experiment=llava15_7b",
        "trainer=deepspeed_zero3",
        "hydra/launcher=slurm",
        "--cfg",
        "hydra",
    )
    launcher = yaml.safe_load(out.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["signal_delay_s"] > 0 and "account" in launcher and "qos" in launcher

    import submitit
    from hydra.core.hydra_config import HydraConfig
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    overrides = [
        "experiment=llava15_7b",
        "trainer=deepspeed_zero3",
        "trainer.num_nodes=2",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.account=vlm",
        f"hydra.sweep.dir={tmp_path}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    # submitit builds the sbatch script only where `srun` exists; this machine has no SLURM,
    # so an empty stand-in satisfies that check (nothing is submitted).
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    # The same translation hydra-submitit-launcher makes before it calls sbatch.
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m mmfw.cli.train", "uid")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=vlm",
        "#SBATCH --signal=USR2@120",
    ):
        assert line in script, line


@pytest.mark.slow  # the default suite stays under 15 minutes; make test-full runs it
def test_submitit_local_runs_a_two_job_sweep(tmp_path):
    run_cli(
        "mmfw-train",
        "-m",
        *TINY,
        "connector=linear,mlp2x_gelu",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={tmp_path}",
    )
    runs = sorted(p for p in tmp_path.iterdir() if (p / "run.json").exists())
    assert [p.name for p in runs] == ["0", "1"]
    connectors = set()
    for run in runs:
        assert json.loads((run / "run.json").read_text())["status"] == "finished"
        assert json.loads((run / "metrics.json").read_text())["step"] == 3
        connectors.add(
            yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["connector"]["_target_"]
        )
    assert len(connectors) == 2
    assert list((tmp_path / ".submitit").iterdir())  # submitit's own job records


@pytest.mark.parametrize(
    "sweeper",
    [
        pytest.param(["hydra/sweeper=optuna_maximize"], marks=pytest.mark.slow),
        pytest.param(
            ["hydra/sweeper=optuna", "hydra.sweeper.direction=maximize"], marks=pytest.mark.slow
        ),
    ],
)
def test_optuna_sweeper_tunes_the_objective_from_metrics_json(sweeper, tmp_path):
    out = run_cli(
        "mmfw-train",
        "-m",
        *TINY,
        *sweeper,
        "hydra.sweeper.n_trials=2",
        "objective=synthetic_magnifier/accuracy",
        "stage.lr=interval(1e-4, 1e-2)",
        f"hydra.sweep.dir={tmp_path}",
    )
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna" and "stage.lr" in results["best_params"]
    runs = [p for p in tmp_path.iterdir() if (p / "metrics.json").exists()]
    assert len(runs) == 2
    best = max(
        json.loads((p / "metrics.json").read_text())["synthetic_magnifier/accuracy"] for p in runs
    )
    assert results["best_value"] == pytest.approx(best)
    assert "Best parameters" in out.stdout + out.stderr
