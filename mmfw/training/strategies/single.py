"""One process: one CPU or one GPU."""

from __future__ import annotations

from mmfw.training.strategies.base import BatchPlan, StrategySpec


class SingleDevice(StrategySpec):
    """No distribution (``trainer.devices`` must be 1). No yaml keys."""

    name = "single"

    def lightning(self, plan: BatchPlan, accelerator: str) -> str:
        if plan.world != 1:
            raise ValueError(
                f"trainer.strategy is single-device but trainer.devices x trainer.num_nodes = "
                f"{plan.world}: use trainer=ddp, trainer=fsdp or a trainer=deepspeed_* choice"
            )
        return "auto"
