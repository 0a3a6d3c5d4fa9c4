"""Run directories to export: trained through the CLI, or built by hand with random weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import SMALL_TASK, run_cli
from tests.helpers import tiny_components


def trained_run(root: Path, experiment: str, steps: int = 20) -> Path:
    """``mmfw-train experiment=<experiment>`` for a few steps; evaluates at the end, so the
    run has ``eval/synthetic_magnifier/predictions.jsonl``."""
    run_cli(
        "mmfw-train",
        f"experiment={experiment}",
        f"trainer.max_steps={steps}",
        "logger=csv",
        f"hydra.run.dir={root}",
        *SMALL_TASK,
    )
    return root


@pytest.fixture(scope="session")
def llava_run(session_tmp: Path) -> Path:
    return trained_run(session_tmp / "export_runs" / "tiny_llava", "tiny_llava")


@pytest.fixture(scope="session")
def llava_next_run(session_tmp: Path) -> Path:
    return trained_run(session_tmp / "export_runs" / "tiny_llava_next", "tiny_llava_next_7b")


def handmade_run(root: Path, *overrides: str, seed: int = 0) -> Path:
    """A run directory (resolved config, tokenizer, ``checkpoints/last.ckpt``) holding a
    tiny model with random weights: for architecture variants that need no training."""
    cfg, parts = tiny_components(root, *overrides)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in parts.model.parameters():  # LoRA's B starts at zero: give every weight a value
            p.add_(torch.randn_like(p) * 0.02)
    (root / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(
        OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)), root / ".hydra" / "config.yaml"
    )
    (root / "checkpoints").mkdir(exist_ok=True)
    state = {f"model.{k}": v for k, v in parts.model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 0}, root / "checkpoints" / "last.ckpt")
    return root
