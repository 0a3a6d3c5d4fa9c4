"""How evenly the ranks share the vision encoder's work, per step and over the run."""

from __future__ import annotations

import torch


class EncoderLoad:
    """Each training step: every rank's encoded views and encoder seconds (see
    ``VisionLanguageModel.encoder_stats``) gathered, and logged as max over mean:
    ``train/encoder_views_max_over_mean`` (1.0 = perfectly even), the same for the views of
    the ranks' own batches (``train/encoder_views_unbalanced_max_over_mean``: what it would
    be without ``trainer.encoder_balance``) and ``train/encoder_seconds_max_over_mean``."""

    KEYS = (
        "train/encoder_views_unbalanced_max_over_mean",
        "train/encoder_views_max_over_mean",
        "train/encoder_seconds_max_over_mean",
    )

    def __init__(self) -> None:
        self.sums = dict.fromkeys(self.KEYS, 0.0)
        self.steps = 0

    def step(self, trainer, pl_module) -> None:
        stats = getattr(pl_module.model, "encoder_stats", None)
        if stats is None:
            return
        mine = torch.tensor(stats.take(), dtype=torch.float64, device=pl_module.device)
        every = trainer.strategy.all_gather(mine) if trainer.world_size > 1 else mine[None]
        every = every.reshape(-1, 3)
        if float(every[:, 0].sum()) == 0:  # no image anywhere this step
            return
        self.steps += 1
        for column, key in enumerate(self.KEYS):
            ratio = _max_over_mean(every[:, column])
            self.sums[key] += ratio
            pl_module.log(key, ratio, batch_size=1)

    def summary(self) -> dict:
        """The mean of each ratio over the run's steps with images (``metrics.json``)."""
        if not self.steps:
            return {}
        return {k: round(v / self.steps, 4) for k, v in self.sums.items()}

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.sums.update(state.get("sums", {}))
        self.steps = int(state.get("steps", 0))


def _max_over_mean(values: torch.Tensor) -> float:
    mean = float(values.mean())
    return float(values.max()) / mean if mean > 0 else 1.0
