"""FSDP2 (``torch.distributed.fsdp.fully_shard``) through Lightning's ModelParallelStrategy."""

from __future__ import annotations

from datetime import timedelta

from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

from mmfw.models.blocks import transformer_blocks
from mmfw.models.hf_loading import resolve_dtype
from mmfw.training.strategies.base import BatchPlan, Sharding, StrategySpec


class FSDP2(StrategySpec):
    """Fully sharded data parallel (FSDP2): every decoder layer and encoder block is its own
    shard unit, then the rest of the model. Parameters are sharded one by one (DTensors), so
    frozen and trainable parameters mix freely inside a unit and only trainable ones get
    reduce-scattered gradients.

    Yaml keys:
      reshard_after_forward: free the gathered weights after each unit's forward (ZeRO-3
        behaviour; false keeps them until backward, like ZeRO-2, for more memory and speed).
      param_dtype: compute dtype of the gathered weights (bfloat16 on GPUs; null = as stored).
      reduce_dtype: dtype of the gradient reduce-scatter (float32 keeps it exact).
      cpu_offload: keep the sharded parameters and optimizer state on the CPU.
      save_distributed_checkpoint: each rank writes its shard (a folder; ``mmfw-consolidate``
        turns it into one file) instead of gathering the full state on rank 0.
      timeout_minutes: collective timeout.
    """

    name = "fsdp"
    shards_parameters = True
    uses_checkpoint_io = False

    def __init__(
        self,
        *,
        reshard_after_forward: bool = True,
        param_dtype: str | None = "bfloat16",
        reduce_dtype: str | None = "float32",
        cpu_offload: bool = False,
        save_distributed_checkpoint: bool = True,
        timeout_minutes: int = 30,
    ) -> None:
        self.reshard_after_forward = reshard_after_forward
        self.param_dtype = (
            resolve_dtype(param_dtype, "trainer.strategy.param_dtype") if param_dtype else None
        )
        self.reduce_dtype = (
            resolve_dtype(reduce_dtype, "trainer.strategy.reduce_dtype") if reduce_dtype else None
        )
        self.cpu_offload = cpu_offload
        self.save_distributed_checkpoint = save_distributed_checkpoint
        self.timeout_minutes = timeout_minutes
        self.sharding = Sharding(
            weights=True,
            gradients=True,
            optimizer=True,
            offload_optimizer=cpu_offload,
            offload_params=cpu_offload,
            gathers_layers=True,
        )

    def lightning(self, plan: BatchPlan, accelerator: str) -> ModelParallelStrategy:
        return ModelParallelStrategy(
            data_parallel_size=plan.world,
            tensor_parallel_size=1,
            save_distributed_checkpoint=self.save_distributed_checkpoint,
            timeout=timedelta(minutes=self.timeout_minutes),
        )

    def parallelize(self, model: nn.Module, lightning_module) -> nn.Module:
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        mesh = lightning_module.device_mesh["data_parallel"]
        kwargs = {
            "mesh": mesh,
            "reshard_after_forward": self.reshard_after_forward,
            "mp_policy": MixedPrecisionPolicy(
                param_dtype=self.param_dtype, reduce_dtype=self.reduce_dtype
            ),
        }
        if self.cpu_offload:
            kwargs["offload_policy"] = CPUOffloadPolicy()
        for block in transformer_blocks(model):
            fully_shard(block, **kwargs)
        fully_shard(model, **kwargs)
        return model
