"""DeepSpeed ZeRO-2 / ZeRO-3 (optionally offloading to the CPU) through Lightning."""

from __future__ import annotations

import argparse
import copy
from typing import Any

from lightning.pytorch.strategies import DeepSpeedStrategy

from mmfw.training.strategies.base import BatchPlan, Sharding, StrategySpec

AUTO = "auto"


def resolve_deepspeed_config(config: dict[str, Any], plan: BatchPlan) -> dict[str, Any]:
    """The DeepSpeed config with every ``"auto"`` value filled from the run's own numbers:
    ``train_micro_batch_size_per_gpu`` ← the micro-batch, ``gradient_accumulation_steps`` ←
    the derived accumulation, ``train_batch_size`` ← the global batch, ``gradient_clipping``
    ← ``trainer.gradient_clip_val``, ``bf16.enabled`` / ``fp16.enabled`` ← ``trainer.precision``.
    The result is complete: ``deepspeed.runtime.config.DeepSpeedConfig`` validates it."""
    cfg = copy.deepcopy(dict(config))
    values = {
        "train_micro_batch_size_per_gpu": plan.micro_batch,
        "gradient_accumulation_steps": plan.accumulate,
        # DeepSpeed counts every process as data-parallel (a context-parallel group's ranks
        # too) and averages gradients over all of them, which is what context parallelism needs.
        "train_batch_size": plan.micro_batch * plan.accumulate * plan.world,
        "gradient_clipping": float(plan.gradient_clip_val or 0.0),
    }
    for key, value in values.items():
        if cfg.get(key, AUTO) == AUTO:
            cfg[key] = value
    precision = str(plan.precision)
    for key, on in (("bf16", precision.startswith("bf16")), ("fp16", precision.startswith("16"))):
        section = cfg.setdefault(key, {"enabled": AUTO})
        if section.get("enabled", AUTO) == AUTO:
            section["enabled"] = on
    leftover = [k for k, v in _walk(cfg) if v == AUTO]
    if leftover:
        raise ValueError(
            f"trainer.strategy.config has 'auto' values mmfw cannot resolve: {leftover}; "
            "set them explicitly"
        )
    return cfg


def _walk(node: Any, prefix: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip("."), node


class CPUCapableDeepSpeedStrategy(DeepSpeedStrategy):
    """Lightning's DeepSpeedStrategy, also on the CPU (gloo + DeepSpeed's CPU accelerator).

    On GPUs it is Lightning's class unchanged. On the CPU it skips the CUDA-only checks, so
    the exact code path a cluster runs can be exercised on a laptop or in CI.
    """

    def setup_environment(self) -> None:
        if self.root_device.type == "cpu":
            super(DeepSpeedStrategy, self).setup_environment()
        else:
            super().setup_environment()

    def setup_distributed(self) -> None:
        if self.root_device.type != "cpu":
            return super().setup_distributed()
        from lightning.fabric.utilities.seed import reset_seed

        reset_seed()
        self.set_world_ranks()
        self._init_deepspeed_distributed()

    def _setup_model_and_optimizer(self, model, optimizer, lr_scheduler=None):
        if self.root_device.type != "cpu":
            return super()._setup_model_and_optimizer(model, optimizer, lr_scheduler)
        import deepspeed

        engine, ds_optimizer, _, _ = deepspeed.initialize(
            args=argparse.Namespace(device_rank=-1),  # -1: DeepSpeed's own (CPU) device
            config=self.config,
            model=model,
            model_parameters=filter(lambda p: p.requires_grad, model.parameters()),
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            dist_init_required=False,
        )
        return engine, ds_optimizer


class DeepSpeed(StrategySpec):
    """DeepSpeed through Lightning's DeepSpeedStrategy.

    Yaml keys:
      config: the DeepSpeed config as a yaml mapping (``zero_optimization``, ``bf16``, ...).
        ``"auto"`` values are filled from the run (see ``resolve_deepspeed_config``); the
        optimizer and scheduler come from ``optim`` (do not put them here).
    """

    uses_checkpoint_io = False
    upcast_trainable = False

    def __init__(self, *, config: dict[str, Any]) -> None:
        self.config = _plain(config)
        zero = self.config.get("zero_optimization", {}) or {}
        self.stage = int(zero.get("stage", 0))
        if self.stage not in (0, 1, 2, 3):
            raise ValueError(
                f"trainer.strategy.config.zero_optimization.stage={self.stage}: use 0-3"
            )
        offload_opt = (zero.get("offload_optimizer") or {}).get("device", "none") != "none"
        offload_par = (zero.get("offload_param") or {}).get("device", "none") != "none"
        self.name = f"deepspeed_zero{self.stage}" + ("_offload" if offload_opt else "")
        self.sharding = Sharding(
            weights=self.stage >= 3,
            gradients=self.stage >= 2,
            optimizer=self.stage >= 1,
            offload_optimizer=offload_opt,
            offload_params=offload_par,
            accounting="deepspeed",
            gathers_layers=self.stage >= 3,
        )
        self.shards_parameters = self.stage >= 3
        self._hf_config = None

    def resolved(self, plan: BatchPlan) -> dict[str, Any]:
        return resolve_deepspeed_config(self.config, plan)

    def lightning(self, plan: BatchPlan, accelerator: str) -> DeepSpeedStrategy:
        config = self.resolved(plan)
        # Lightning sets the accumulation itself from Trainer(accumulate_grad_batches=...),
        # which mmfw passes with the same derived value.
        config.pop("gradient_accumulation_steps")
        if self.stage == 3:
            # transformers loads pretrained weights into ZeRO-3 partitions only when it knows
            # the config; the object must stay alive while the model is built.
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_config = HfDeepSpeedConfig({**config, "gradient_accumulation_steps": 1})
        return CPUCapableDeepSpeedStrategy(config=config)

    def release(self) -> None:
        # transformers holds the config through a weak reference: once it is gone, models
        # built later (the end-of-run evaluation copy) are ordinary, unpartitioned ones.
        self._hf_config = None
        import gc

        gc.collect()


def _plain(node) -> dict:
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
