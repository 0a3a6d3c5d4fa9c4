"""What every trainer ``strategy`` node offers a run: the Lightning strategy, how it shards
model states (for ``mmfw-plan``'s memory block) and any model-side parallelisation."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class BatchPlan:
    """The numbers a strategy's "auto" values resolve to (see ``mmfw.training.batching``)."""

    micro_batch: int
    accumulate: int
    world: int
    gradient_clip_val: float | None
    precision: str
    context_parallel: int = 1  # ranks that split one micro-batch's sequences

    @property
    def replicas(self) -> int:
        """Data-parallel replicas: each draws its own micro-batches."""
        return self.world // self.context_parallel

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.accumulate * self.replicas


@dataclass(frozen=True)
class Sharding:
    """Which model states are split across the data-parallel ranks, which live on the CPU,
    and whose bytes-per-parameter the memory plan uses (``torch`` | ``deepspeed``)."""

    weights: bool = False
    gradients: bool = False
    optimizer: bool = False
    offload_optimizer: bool = False
    offload_params: bool = False
    accounting: str = "torch"
    gathers_layers: bool = False  # ZeRO-3 / FSDP gather one layer's full weights at a time


class StrategySpec:
    """Base of the ``trainer.strategy`` choices (one class per file in this package)."""

    name = "single"
    sharding = Sharding()
    # ZeRO-3 / FSDP: no rank holds the whole model, so end-of-run evaluation reloads the
    # consolidated checkpoint on rank 0 instead of using the live module.
    shards_parameters = False
    # Lightning writes single-file checkpoints through the CheckpointIO plugin (atomic in mmfw).
    uses_checkpoint_io = True
    # Under mixed precision, trainable weights are kept in float32 (DeepSpeed keeps its own
    # float32 master copy, so it says False).
    upcast_trainable = True

    def lightning(self, plan: BatchPlan, accelerator: str):
        """The object (or name) passed as ``Trainer(strategy=...)``."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop process-wide state set up for the fit (called once training is over)."""

    def parallelize(self, model: nn.Module, lightning_module) -> nn.Module:
        """Model-side sharding applied in ``configure_model`` (FSDP2); others: unchanged."""
        return model
