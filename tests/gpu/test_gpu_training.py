"""What only a GPU runs: Lightning's DeepSpeedStrategy and FSDP on CUDA, bf16 with
flash-attention, and a 7B recipe built sharded under ZeRO-3 (``make test-gpu``).

Skipped, with the reason shown, where there is no CUDA device; written to pass unchanged on a
GPU machine (one GPU or more; the multi-GPU cases use up to 8 and say when they cannot).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from mmfw.plan import plan
from tests.conftest import SMALL_TASK, run_cli

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (run `make test-gpu` on a GPU machine)"
)
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
TINY = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.max_steps=4",
    "trainer.log_every_n_steps=1",
    "checkpoint.every_n_train_steps=2",
    "benchmarks.synthetic_magnifier.max_samples=8",
    "data.batch_size=4",
]


def _train(tmp_path, *overrides) -> dict:
    run_cli("mmfw-train", *TINY, *overrides, f"hydra.run.dir={tmp_path}")
    return json.loads((tmp_path / "metrics.json").read_text())


@pytest.mark.parametrize(
    "trainer", ["deepspeed_zero2", "deepspeed_zero3", "deepspeed_zero3_offload"]
)
def test_lightning_deepspeed_strategy_on_one_gpu(trainer, tmp_path):
    metrics = _train(
        tmp_path, f"trainer={trainer}", "trainer.devices=1", "stage=lora", "stage.adapters.lora.r=4"
    )
    assert metrics["step"] == 4 and metrics["train/loss"] > 0
    assert (tmp_path / "checkpoints" / "last.ckpt" / "latest").exists()
    assert metrics["train/mfu"] > 0  # trainer.gpu's peak is known on GPU trainers


def test_fsdp2_on_the_gpus_with_bf16_compute(tmp_path):
    devices = min(GPUS, 2)
    metrics = _train(
        tmp_path,
        "trainer=fsdp",
        f"trainer.devices={devices}",
        f"data.global_batch_size={4 * devices}",
    )
    assert metrics["step"] == 4 and metrics["batch/devices"] == devices
    assert 0 <= metrics["synthetic_magnifier/accuracy"] <= 1


def test_ddp_bf16_on_the_gpus(tmp_path):
    devices = min(GPUS, 2)
    metrics = _train(tmp_path, "trainer=ddp", f"trainer.devices={devices}")
    assert metrics["step"] == 4


@pytest.mark.skipif(
    importlib.util.find_spec("flash_attn") is None,
    reason="flash-attn is not installed (pip install -e '.[gpu]')",
)
def test_bf16_with_flash_attention(tmp_path):
    from mmfw.runs import load_run

    _train(tmp_path, "trainer=gpu")
    run = load_run(tmp_path, device="cuda")
    assert run.config.trainer.attn_implementation == "flash_attention_2"
    assert run.model.llm.config._attn_implementation == "flash_attention_2"


def test_7b_zero3_plan_fits_eight_of_these_gpus():
    import mmfw

    total = torch.cuda.get_device_properties(0).total_memory
    cfg = mmfw.compose(
        ["experiment=llava15_7b", "stage=sft", "trainer=deepspeed_zero3", "trainer.devices=8"],
        config_name="plan",
    )
    per_device = plan(cfg)["memory"]["per_device"]["total"]
    assert per_device < 0.8 * total, f"{per_device / 2**30:.1f} GiB of model states per GPU"


@pytest.mark.slow
def test_7b_recipe_is_built_sharded_under_zero3(tmp_path):
    """The real-size LLaVA-1.5-7B (random weights) is constructed inside deepspeed.zero.Init
    in configure_model and trains a step on up to 8 GPUs."""
    devices = min(GPUS, 8)
    metrics = _train(
        tmp_path,
        "experiment=llava15_7b",
        "data=synthetic_magnifier",
        "synthetic=magnifier_colour",
        "stage=align",
        "trainer=deepspeed_zero3",
        f"trainer.devices={devices}",
        "trainer.max_steps=1",
        "data.batch_size=1",
        f"data.global_batch_size={devices}",
        "evaluate.at_end=false",
    )
    assert metrics["step"] == 1
