"""Evaluation during training, on the model being trained (no second copy).

Every ``evaluate.every_n_steps`` optimizer steps (and after the last step) each benchmark of
the run is evaluated: the questions are split over the ranks, each rank answers its share with
the live model, the prediction rows are gathered, and rank 0 logs ``eval/<benchmark>/<metric>``
at that step to every logger, plus, on wandb, a Table of sample predictions with their images.
Under ZeRO-3 / FSDP every rank steps the same number of times (each forward is collective).
"""

from __future__ import annotations

import sys

import lightning as L
import torch.distributed as dist

from mmfw.eval.benchmarks.base import Benchmark


def gather_rows(rows: list[dict]) -> list[list[dict]]:
    """Every rank's rows (all ranks call this together)."""
    every: list = [None] * dist.get_world_size()
    dist.all_gather_object(every, rows)
    return every


def flat_metrics(name: str, metrics: dict) -> dict[str, float]:
    """``eval/<name>/<metric>`` for the numeric metrics (nested dicts flattened with '/')."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[f"eval/{name}/{key}"] = float(value)
        elif isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"eval/{name}/{key}/{sub}"] = float(v)
    return out


class InTrainingEval(L.Callback):
    """Yaml keys (``evaluate`` group):
    every_n_steps: evaluate every N optimizer steps and after the last (null: off).
    max_samples: questions per benchmark during training (null: all), to keep it cheap.
    table_rows: sample predictions per benchmark in the wandb Table (0: none).
    """

    def __init__(
        self,
        benchmarks: dict[str, Benchmark],
        processor,
        every_n_steps: int,
        table_rows: int = 8,
        synced: bool = False,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"evaluate.every_n_steps={every_n_steps} must be >= 1 or null")
        self.benchmarks = benchmarks
        self.processor = processor
        self.every = int(every_n_steps)
        self.table_rows = int(table_rows)
        self.synced = synced
        self.done: set[int] = set()
        self.history: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        if step and step % self.every == 0 and step not in self.done:
            self.evaluate(trainer, pl_module, step)

    def on_train_end(self, trainer, pl_module) -> None:
        step = int(trainer.global_step)
        if step and step not in self.done:
            self.evaluate(trainer, pl_module, step)

    def evaluate(self, trainer, pl_module, step: int) -> None:
        self.done.add(step)
        world = int(trainer.world_size)
        distributed = world > 1 and dist.is_available() and dist.is_initialized()
        logged: dict[str, float] = {}
        for name, bench in self.benchmarks.items():
            try:
                rows, metrics = bench.run(
                    pl_module.model,
                    self.processor,
                    rank=int(trainer.global_rank) if distributed else 0,
                    world=world if distributed else 1,
                    gather=gather_rows if distributed else None,
                    synced=self.synced and distributed,
                )
            except Exception as e:  # noqa: BLE001 - an evaluation must not end the training
                if trainer.is_global_zero:
                    print(
                        f"mmfw-train: warning: in-training eval of {name} failed: {e}",
                        file=sys.stderr,
                    )
                continue
            values = flat_metrics(name, metrics)
            logged.update(values)
            if trainer.is_global_zero and self.table_rows:
                self._table(trainer, name, bench, rows, step)
        if trainer.is_global_zero and logged:
            for logger in trainer.loggers:
                logger.log_metrics(logged, step=step)
            self.history.append({"step": step, **logged})

    def _table(self, trainer, name: str, bench: Benchmark, rows: list[dict], step: int) -> None:
        from lightning.pytorch.loggers import WandbLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers:
            return
        import wandb

        columns = ["step", "index", "image", "prompt", "output", "prediction", "answer", "correct"]
        data, images = [], []
        for request, row in list(zip(bench._requests or [], rows, strict=False))[: self.table_rows]:
            image = wandb.Image(request.images[0]) if request.images else None
            data.append([step, str(row.get("index")), image, row.get("prompt"), row.get("output"),
                         str(row.get("prediction")), str(row.get("answer")), row.get("correct")])  # fmt: skip
            if request.images:
                caption = (
                    f"{row.get('index')}: {row.get('prediction')} (answer {row.get('answer')})"
                )
                images.append(wandb.Image(request.images[0], caption=caption))
        for lg in loggers:
            # Offline runs keep a table's images only as the word "Image" (wandb#4611); the
            # same samples as an image panel keep them, online and offline.
            payload = {
                f"eval/{name}/predictions": wandb.Table(columns=columns, data=data),
                f"eval/{name}/samples": images,
            }
            log = getattr(lg, "log_experiment", None) or lg.experiment.log
            log(payload)

    def state_dict(self) -> dict:
        return {"done": sorted(self.done), "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.done = set(state.get("done", []))
        self.history = list(state.get("history", []))
