"""The trainer group: every choice composes for a real-size recipe; bad keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.config import CONF_DIR
from mmfw.training.trainer import TrainerSpec

TRAINERS = sorted(p.stem for p in (Path(CONF_DIR) / "trainer").glob("*.yaml"))


def test_all_trainers_of_the_issue_exist():
    assert set(TRAINERS) >= {
        "cpu",
        "gpu",
        "ddp",
        "deepspeed_zero2",
        "deepspeed_zero3",
        "deepspeed_zero3_offload",
        "fsdp",
    }


@pytest.mark.parametrize("name", TRAINERS)
def test_trainer_composes_with_a_real_size_recipe(name):
    cfg = mmfw.compose(["experiment=llava15_7b", f"trainer={name}"])
    spec = instantiate(cfg.trainer)
    assert isinstance(spec, TrainerSpec)
    gpu = name != "cpu"
    assert (spec.accelerator == "gpu") == gpu
    assert (spec.precision == "bf16-mixed") == gpu
    # The attention implementation follows the trainer into the LLM and the encoder.
    assert cfg.llm.attn_implementation == cfg.trainer.attn_implementation
    assert cfg.encoder.attn_implementation == cfg.trainer.attn_implementation
    assert cfg.trainer.attn_implementation == ("flash_attention_2" if gpu else "sdpa")
    if gpu:
        assert spec.peak_tflops == 989.0  # H100 by default; trainer.gpu=a100 → 312


def test_peak_tflops_table_and_errors():
    cfg = mmfw.compose(["trainer=ddp", "trainer.gpu=a100"])
    assert instantiate(cfg.trainer).peak_tflops == 312.0
    with pytest.raises(Exception, match="trainer.gpu='tpu9'"):
        instantiate(mmfw.compose(["trainer=ddp", "trainer.gpu=tpu9"]).trainer)
    # A GPU table says nothing about a CPU run.
    cpu_ddp = mmfw.compose(["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"])
    assert instantiate(cpu_ddp.trainer).peak_tflops is None


def test_extra_trainer_arguments_are_checked():
    with pytest.raises(Exception, match="trainer.extra.max_stepz"):
        instantiate(mmfw.compose(["+trainer.extra.max_stepz=3"]).trainer)
    with pytest.raises(Exception, match="mmfw sets it itself"):
        instantiate(mmfw.compose(["+trainer.extra.strategy=ddp"]).trainer)
    ok = instantiate(mmfw.compose(["+trainer.extra.limit_val_batches=2"]).trainer)
    assert ok.extra == {"limit_val_batches": 2}


def test_single_device_refuses_several_devices():
    cfg = mmfw.compose(["trainer.devices=2"])
    spec = instantiate(cfg.trainer)
    with pytest.raises(ValueError, match="use trainer=ddp"):
        spec.strategy.lightning(spec.batch_plan(4, None), "cpu")


def test_flash_attention_falls_back_with_a_warning_without_cuda():
    import torch

    from mmfw.models.hf_loading import resolve_attn_implementation

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the fallback applies only without it")
    with pytest.warns(
        UserWarning, match="llm.attn_implementation=flash_attention_2 but there is no CUDA"
    ):
        assert resolve_attn_implementation("flash_attention_2", "llm.attn_implementation") == "sdpa"
    assert resolve_attn_implementation("eager", "x") == "eager"
