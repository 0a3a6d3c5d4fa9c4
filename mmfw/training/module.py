"""The thin LightningModule: step, loss, logging, optimiser."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from mmfw.models.vlm import VisionLanguageModel
from mmfw.training.optim import AdamWCosine
from mmfw.training.stages import Stage

MODEL_INPUTS = ("input_ids", "attention_mask", "labels", "images", "layouts")


class VLMModule(L.LightningModule):
    """Wraps a :class:`VisionLanguageModel`; the stage decides what trains.

    ``config`` (the resolved run config, plain containers) is stored in every checkpoint so
    a checkpoint alone can rebuild its model.
    """

    def __init__(
        self, model: VisionLanguageModel, stage: Stage, optim: AdamWCosine, config: dict[str, Any]
    ) -> None:
        super().__init__()
        self.model = model
        self.stage = stage
        self.optim = optim
        self.config = config
        stage.freeze(model)

    def _step(self, batch: dict, prefix: str) -> torch.Tensor | None:
        if batch["input_ids"] is None:  # every record of the batch was skipped
            return None
        out = self.model(**{k: batch[k] for k in MODEL_INPUTS if k in batch})
        n = batch["num_samples"]
        self.log(f"{prefix}/loss", out.loss, batch_size=n, prog_bar=True, sync_dist=prefix == "val")
        return out.loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> dict:
        groups = self.stage.param_groups(self.model, self.optim.weight_decay)
        return self.optim.build(groups, int(self.trainer.estimated_stepping_batches))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mmfw_config"] = self.config
