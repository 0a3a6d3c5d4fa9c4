"""mmfw-train / mmfw-eval through their console scripts: real runs on disk."""

from __future__ import annotations

import json
import re

import pytest
import torch
import yaml

from tests.conftest import SMALL_TASK, run_cli
from tests.helpers import read_wandb_records

FAST = [
    *SMALL_TASK,
    "data.batch_size=4",
    "trainer.log_every_n_steps=1",
    "trainer.val_check_interval=2",
    "checkpoint.every_n_train_steps=1",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train") / "run"
    run_cli(
        "mmfw-train", "experiment=tiny_llava", *FAST, "trainer.max_steps=2", f"hydra.run.dir={d}"
    )
    return d


def test_two_step_run_writes_checkpoint_metrics_and_resolved_config(run_dir):
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / "checkpoints" / "step000002.ckpt").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["step"] == 2
    assert (
        0.0 <= metrics["synthetic_magnifier/accuracy"] <= 1.0
        and metrics["synthetic_magnifier/chance"] == 0.25
    )
    text = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "${" not in text
    cfg = yaml.safe_load(text)
    assert cfg["name"] == "tiny_llava" and cfg["trainer"]["max_steps"] == 2
    assert (run_dir / "tokenizer" / "tokenizer.json").exists()
    assert (run_dir / "eval" / "synthetic_magnifier" / "predictions.jsonl").exists()


def test_checkpoint_carries_the_config_and_loads_with_weights_only(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["mmfw_config"]["name"] == "tiny_llava"
    assert ckpt["global_step"] == 2


def test_wandb_offline_run_holds_the_config(run_dir):
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = read_wandb_records(next(runs[0].glob("run-*.wandb")))
    config = {}
    for rec in records:
        if rec.WhichOneof("record_type") == "config":
            config.update({u.key: json.loads(u.value_json) for u in rec.config.update})
    assert config["name"] == "tiny_llava"
    assert config["connector"]["_target_"].endswith("MLPConnector")
    assert config["trainer"]["max_steps"] == 2
    # The job's overrides ride along as config and tags (wandb filters a sweep by them).
    assert "trainer.max_steps=2" in config["overrides"]
    tags = [t for rec in records if rec.WhichOneof("record_type") == "run" for t in rec.run.tags]
    assert "trainer.max_steps=2" in tags


def test_eval_cli_writes_contract_files(run_dir):
    out = run_cli(
        "mmfw-eval", f"run={run_dir}", "benchmark=synthetic_magnifier", "benchmark.max_samples=10"
    )
    metrics = json.loads((run_dir / "eval" / "synthetic_magnifier" / "metrics.json").read_text())
    assert metrics["num_questions"] == 10 and "accuracy" in out.stdout
    preds = [
        json.loads(line)
        for line in (run_dir / "eval" / "synthetic_magnifier" / "predictions.jsonl")
        .read_text()
        .splitlines()
    ]
    assert len(preds) == 10
    for p in preds:
        assert {"index", "prediction", "answer", "correct"} <= set(p)
        assert p["correct"] == (p["prediction"] == p["answer"])
    assert metrics["correct"] == sum(p["correct"] for p in preds)


def test_resume_auto_continues_at_the_saved_step(run_dir):
    first_step_ckpt = run_dir / "checkpoints" / "step000001.ckpt"
    stamp = first_step_ckpt.stat().st_mtime_ns
    out = run_cli(
        "mmfw-train",
        "experiment=tiny_llava",
        *FAST,
        "trainer.max_steps=4",
        "resume=auto",
        f"hydra.run.dir={run_dir}",
    )
    assert "Restoring states from the checkpoint path" in out.stdout + out.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["step"] == 4
    assert (run_dir / "checkpoints" / "step000004.ckpt").exists()
    assert first_step_ckpt.stat().st_mtime_ns == stamp  # steps 1-2 were not trained again
    # The bar counts optimizer steps of max_steps (not "Epoch 0/-2"), from the resumed step.
    assert re.search(r"Step: +100%.*\b4/4\b", out.stdout) and "/-2" not in out.stdout


def test_typo_in_cli_override_fails_naming_the_key(tmp_path):
    out = run_cli(
        "mmfw-train",
        "experiment=tiny_llava",
        "trainer.max_stepz=2",
        f"hydra.run.dir={tmp_path}",
        check=False,
    )
    assert out.returncode != 0
    assert "max_stepz" in out.stderr
