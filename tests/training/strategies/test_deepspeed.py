"""Every DeepSpeed trainer yaml resolves its "auto" values and passes DeepSpeed's validator."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.config import CONF_DIR
from mmfw.training.strategies.base import BatchPlan
from mmfw.training.strategies.deepspeed import resolve_deepspeed_config

DEEPSPEED = sorted(p.stem for p in (Path(CONF_DIR) / "trainer").glob("deepspeed_*.yaml"))


def test_the_three_deepspeed_trainers_exist():
    assert DEEPSPEED == ["deepspeed_zero2", "deepspeed_zero3", "deepspeed_zero3_offload"]


@pytest.fixture(scope="module")
def deepspeed_comm():
    """A one-process gloo group: DeepSpeed's validator reads the data-parallel size from an
    ``mpu`` only once its communication backend is up."""
    import os

    import deepspeed
    import torch.distributed as dist

    from mmfw.training.distributed import free_port

    env = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    deepspeed.init_distributed(dist_backend="gloo", verbose=False)
    yield
    dist.destroy_process_group()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.parametrize("name", DEEPSPEED)
@pytest.mark.parametrize(("devices", "nodes"), [(8, 1), (8, 2), (2, 1)])
def test_resolved_config_is_valid_deepspeed(name, devices, nodes, deepspeed_comm):
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = mmfw.compose(
        [
            "experiment=llava15_7b",
            f"trainer={name}",
            f"trainer.devices={devices}",
            f"trainer.num_nodes={nodes}",
            "data.batch_size=16",
            "data.global_batch_size=512",
        ]
    )
    spec = instantiate(cfg.trainer)
    plan = spec.batch_plan(16, 512)
    resolved = spec.strategy.resolved(plan)
    world = devices * nodes
    assert resolved["train_micro_batch_size_per_gpu"] == 16
    assert resolved["gradient_accumulation_steps"] == 512 // (16 * world)
    assert resolved["train_batch_size"] == 512
    assert resolved["gradient_clipping"] == cfg.trainer.gradient_clip_val
    assert resolved["bf16"]["enabled"] is True and resolved["fp16"]["enabled"] is False
    ds = DeepSpeedConfig(resolved, mpu=_World(world))
    assert ds.world_size == world
    assert ds.zero_optimization_stage == int(name[len("deepspeed_zero")])
    assert ds.train_batch_size == 512
    assert ds.bfloat16_config.enabled and not ds.float16_config.enabled


class _World:
    """The data-parallel size DeepSpeed's validator checks the batch arithmetic against."""

    def __init__(self, world: int) -> None:
        self.world = world

    def get_data_parallel_world_size(self) -> int:  # noqa: D102
        return self.world

    def get_model_parallel_world_size(self) -> int:
        return 1

    def get_sequence_parallel_world_size(self) -> int:
        return 1


def test_offload_and_sharding_follow_the_config():
    spec = instantiate(mmfw.compose(["trainer=deepspeed_zero3_offload"]).trainer)
    s = spec.strategy.sharding
    assert (
        s.weights and s.gradients and s.optimizer and s.offload_optimizer and not s.offload_params
    )
    assert spec.strategy.name == "deepspeed_zero3_offload" and spec.strategy.shards_parameters
    zero2 = instantiate(mmfw.compose(["trainer=deepspeed_zero2"]).trainer).strategy
    assert not zero2.sharding.weights and zero2.sharding.gradients and not zero2.shards_parameters


def test_unresolvable_auto_is_named():
    plan = BatchPlan(
        micro_batch=2, accumulate=1, world=1, gradient_clip_val=1.0, precision="32-true"
    )
    with pytest.raises(ValueError, match="zero_optimization.stage"):
        resolve_deepspeed_config({"zero_optimization": {"stage": "auto"}}, plan)
    explicit = resolve_deepspeed_config(
        {"train_micro_batch_size_per_gpu": 2, "bf16": {"enabled": True}}, plan
    )
    assert explicit["bf16"]["enabled"] is True  # explicit values are kept
