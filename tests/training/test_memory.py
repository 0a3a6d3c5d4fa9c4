"""mmfw-plan's memory block: ZeRO sharding ratios, and DeepSpeed's own estimators agree."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

import mmfw
from mmfw.build import build_model
from mmfw.plan import plan
from mmfw.training.memory import largest_layer


def plan_of(*overrides):
    return plan(
        mmfw.compose(["experiment=llava15_7b", "stage=full", *overrides], config_name="plan")
    )


@pytest.fixture(scope="module")
def llava_sizes():
    cfg = mmfw.compose(["experiment=llava15_7b", "stage=full"])
    with torch.device("meta"):
        model = build_model(cfg, instantiate(cfg.resolution), None, image_token_id=0)
    return sum(p.numel() for p in model.parameters()), largest_layer(model)


def test_zero3_on_8_gpus_holds_an_eighth_of_ddp():
    ddp = plan_of("trainer=ddp", "trainer.devices=8")["memory"]
    zero3 = plan_of("trainer=deepspeed_zero3", "trainer.devices=8")["memory"]
    assert ddp["strategy"] == "ddp" and zero3["strategy"] == "deepspeed_zero3"
    assert ddp["devices"] == zero3["devices"] == 8
    ratio = zero3["per_device"]["total"] / ddp["per_device"]["total"]
    # 1/8 of the states plus DeepSpeed's float32 gradient partition and one gathered layer.
    assert 1 / 8 <= ratio < 1.2 / 8, ratio
    fsdp = plan_of("trainer=fsdp", "trainer.devices=8")["memory"]
    assert fsdp["per_device"]["total"] < ddp["per_device"]["total"] / 7


def test_zero3_matches_deepspeeds_estimator(llava_sizes):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    total, largest = llava_sizes
    ours = plan_of("trainer=deepspeed_zero3", "trainer.devices=8")["memory"]["per_device"]["total"]
    _, theirs, _ = estimate_zero3_model_states_mem_needs(
        total, largest, num_gpus_per_node=8, num_nodes=1, cpu_offload=False
    )
    assert ours == pytest.approx(theirs, rel=0.05)
    offload = plan_of("trainer=deepspeed_zero3_offload", "trainer.devices=8")["memory"]
    _, theirs_off, _ = estimate_zero3_model_states_mem_needs(
        total, largest, num_gpus_per_node=8, cpu_offload=True, cpu_offload_params=False
    )
    assert offload["per_device"]["total"] == pytest.approx(theirs_off, rel=0.05)
    assert offload["per_device"]["optimizer"] == 0 and offload["cpu_per_device"]["optimizer"] > 0


def test_zero2_matches_deepspeeds_estimator(llava_sizes):
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    total, _ = llava_sizes
    ours = plan_of("trainer=deepspeed_zero2", "trainer.devices=8")["memory"]["per_device"]["total"]
    _, theirs = estimate_zero2_model_states_mem_needs(total, num_gpus_per_node=8, cpu_offload=False)
    assert ours == pytest.approx(theirs, rel=0.05)


def test_frozen_parameters_cost_weights_only():
    full = plan_of("trainer=ddp", "trainer.devices=1")["memory"]["per_device"]
    align = plan(
        mmfw.compose(
            ["experiment=llava15_7b", "stage=align", "trainer=ddp", "trainer.devices=1"],
            config_name="plan",
        )
    )
    mem = align["memory"]["per_device"]
    trainable = align["params"]["trainable"]
    assert mem["gradients"] == 4 * trainable and mem["optimizer"] == 8 * trainable
    assert mem["total"] < full["total"] / 5


def test_adafactor_needs_less_optimizer_memory():
    adam = plan_of("trainer=ddp")["memory"]["per_device"]["optimizer"]
    ada = plan_of("trainer=ddp", "optim=adafactor_cosine")["memory"]["per_device"]["optimizer"]
    assert ada < adam / 4


def test_text_plan_says_whether_it_fits():
    """The plan mmfw-plan prints (its CLI is tested in tests/test_plan.py), in-process."""
    from mmfw.plan import render_text

    common = ["experiment=llava15_7b", "stage=full", "trainer.devices=8"]
    ddp = mmfw.compose([*common, "trainer=ddp", "plan.gpu_memory_gb=80"], config_name="plan")
    assert "does NOT fit a 80 GB GPU" in render_text(plan(ddp))
    zero3 = mmfw.compose([*common, "trainer=deepspeed_zero3"], config_name="plan")
    memory = plan(zero3)["memory"]
    assert memory["fits"] is True and memory["per_device"]["total"] < 80 * 2**30
