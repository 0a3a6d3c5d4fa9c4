"""The thin LightningModule: builds the model where the strategy wants it, step, loss, optimiser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from mmfw.models.vlm import VisionLanguageModel
from mmfw.training.init_from import load_init_weights
from mmfw.training.init_from_hf import load_hf_weights
from mmfw.training.stages import Stage
from mmfw.training.strategies.base import StrategySpec
from mmfw.training.strategies.single import SingleDevice

MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "labels",
    "images",
    "layouts",
    "position_ids",
    "sample_ids",
)


class VLMModule(L.LightningModule):
    """Wraps a :class:`VisionLanguageModel`; the stage decides what trains.

    The model is built in :meth:`configure_model`, inside the strategy's context: under
    DeepSpeed ZeRO-3 every parameter is partitioned as it is created, under FSDP2 the blocks
    are sharded right after, so no rank ever holds a whole real-size model it does not need.
    ``config`` (the resolved run config, plain containers) is stored in every checkpoint so a
    checkpoint alone can rebuild its model.
    """

    def __init__(
        self,
        build_model: Callable[[], VisionLanguageModel],
        stage: Stage,
        optim,
        config: dict[str, Any],
        strategy: StrategySpec | None = None,
        precision: str = "32-true",
        activation_checkpointing: list[str] | None = None,
        loss_reduction: str = "token",
        init_from_hf: str | None = None,
        context_parallel: int = 1,
        encoder_balance: bool = False,
        compile_blocks: bool = False,
        view_budget: int | None = None,
    ) -> None:
        super().__init__()
        self.compile_blocks = bool(compile_blocks)
        self.view_budget = view_budget
        self.context_parallel = int(context_parallel)
        self.encoder_balance = bool(encoder_balance)
        self.loss_reduction = loss_reduction
        self.init_from_hf = init_from_hf
        self._build_model = build_model
        self.stage = stage
        self.optim = optim
        self.config = config
        self.parallel = strategy or SingleDevice()
        self.precision_name = str(precision)
        self.checkpointed = sorted(
            {*stage.gradient_checkpointing, *(activation_checkpointing or [])}
        )
        self.model: VisionLanguageModel | None = None
        self.init_info: dict | None = None
        self.step_losses: list[torch.Tensor] = []

    def configure_model(self) -> None:
        if self.model is not None:  # Lightning calls the hook again for later stages
            return
        model = self._build_model()
        if self.stage.init_from:
            self.init_info = load_init_weights(
                model, self.stage.init_from, self.stage.init_adapters
            )
        elif self.init_from_hf:
            self.init_info = load_hf_weights(model, self.init_from_hf)
        self.stage.freeze(model)
        if self.precision_name.endswith("-mixed") and self.parallel.upcast_trainable:
            # Mixed precision keeps float32 master weights for what trains (autocast or FSDP's
            # param_dtype computes in 16 bits); frozen weights stay as the yaml stores them.
            for param in model.parameters():
                if param.requires_grad and param.dtype != torch.float32:
                    param.data = param.data.float()
        if self.checkpointed:
            model.enable_gradient_checkpointing(self.checkpointed)
        if self.context_parallel > 1:
            model.context_parallel = context_parallel_group(model, self.context_parallel)
        if self.encoder_balance:
            model.encoder_balance = encoder_balance_group(self.context_parallel)
        model.view_budget = self.view_budget
        if self.compile_blocks:
            from mmfw.training.compile import compile_blocks

            compile_blocks(model)
        self.model = self.parallel.parallelize(model, self)

    def _step(self, batch: dict, prefix: str) -> torch.Tensor | None:
        if batch["input_ids"] is None:  # every record of the batch was skipped
            return None
        out = self.model(
            **{k: batch[k] for k in MODEL_INPUTS if k in batch}, loss_reduction=self.loss_reduction
        )
        n = batch["num_samples"]
        # The logged loss is the global batch's (mean over ranks), comparable across layouts.
        sync = prefix == "val" or (self.trainer is not None and self.trainer.world_size > 1)
        self.log(f"{prefix}/loss", out.loss, batch_size=n, prog_bar=True, sync_dist=sync)
        if prefix == "train":
            self.step_losses.append(out.loss.detach())  # checked by the NumericsGuard
        return out.loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> dict:
        groups = self.stage.param_groups(self.model, self.optim.weight_decay)
        self.param_group_table = describe_groups(groups)
        return self.optim.build(groups, int(self.trainer.estimated_stepping_batches))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mmfw_config"] = self.config


def context_parallel_group(model: VisionLanguageModel, size: int):
    """This rank's group of ``size`` consecutive ranks (every rank creates every group, as
    ``new_group`` requires), with the LLM switched to the context-parallel attention."""
    import torch.distributed as dist

    from mmfw.models.context_parallel import ContextParallel, check_heads, use_context_parallel

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            f"trainer.context_parallel={size} needs a distributed run: trainer=ddp (or fsdp, "
            f"deepspeed_*) with trainer.devices x trainer.num_nodes a multiple of {size}"
        )
    check_heads(model.llm.config, size)
    rank, world = dist.get_rank(), dist.get_world_size()
    mine = None
    for first in range(0, world, size):
        group = dist.new_group(list(range(first, first + size)))
        if first <= rank < first + size:
            mine = group
    use_context_parallel(model.llm)
    return ContextParallel(mine, size, rank % size)


def encoder_balance_group(replica_size: int):
    """Every rank shares the encoder's views (one process: nothing to balance, None)."""
    import torch.distributed as dist

    from mmfw.models.encoder_balance import EncoderBalance

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    world = dist.get_world_size()
    # a communicator of its own: its all-to-alls never queue behind DDP's gradient buckets
    group = dist.new_group(list(range(world)))
    return EncoderBalance(group, world, dist.get_rank(), replica_size)


def describe_groups(groups: list[dict]) -> list[dict]:
    """One row per optimiser group: name, parameter count, lr and weight decay."""
    return [
        {
            "group": g["name"],
            # ZeRO-3 partitions report their full size in ds_numel.
            "params": int(sum(getattr(p, "ds_numel", p.numel()) for p in g["params"])),
            "tensors": len(g["params"]),
            "lr": float(g["lr"]),
            "weight_decay": float(g["weight_decay"]),
        }
        for g in groups
    ]


def format_groups(rows: list[dict]) -> str:
    lines = [f"{'optimizer group':<28} {'params':>14} {'lr':>10} {'wd':>6}"]
    for r in rows:
        lines.append(
            f"{r['group']:<28} {r['params']:>14,} {r['lr']:>10.3g} {r['weight_decay']:>6.3g}"
        )
    lines.append(f"{'trainable':<28} {sum(r['params'] for r in rows):>14,}")
    return "\n".join(lines)
