"""Loggers: wandb (offline unless a key is configured) and CSV, both under the run directory.

Both continue a resumed run's history: the CSV keeps every row up to the checkpoint's step
(rows logged after it, which the resumed run logs again, move to ``metrics.superseded-N.csv``;
nothing is deleted) and wandb resumes the same run id.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


def wandb_mode(mode: str) -> str:
    """``auto`` → online only when an API key is available (env or ~/.netrc), else offline."""
    if mode != "auto":
        if mode not in ("online", "offline", "disabled"):
            raise ValueError(f"logger.wandb.mode={mode!r}: use auto, online, offline or disabled")
        return mode
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled"):
        return env
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def wandb_logger(
    *,
    save_dir: str,
    run_name: str,
    group: str | None = None,
    run_id: str | None = None,
    resume_step: int | None = None,
    project: str = "mmfw",
    entity: str | None = None,
    mode: str = "auto",
    tags: list[str] | None = None,
    overrides: list[str] | None = None,
) -> WandbLogger:
    """A wandb run in ``<run dir>/wandb``.

    Yaml keys:
      project, entity: wandb project and team.
      mode: auto (online only with an API key) | online | offline | disabled.
      tags: run tags.
    ``run_name``, ``group`` (the sweep, for multirun jobs), ``run_id`` (kept in run.json, the
    same when a run resumes), ``resume_step`` and ``overrides`` (the job's command-line
    overrides, added as tags so wandb groups and filters a sweep by what it varied) are wired
    by the run builder.
    """
    resolved = wandb_mode(mode)
    return TolerantWandbLogger(
        save_dir=save_dir,
        name=run_name,
        group=group,
        id=run_id,
        resume="allow" if resume_step is not None else None,
        project=project,
        entity=entity,
        offline=resolved == "offline",
        mode=resolved,
        # wandb caps a tag at 64 characters.
        tags=[*list(tags or []), *(o[:64] for o in overrides or [])],
    )


class TolerantWandbLogger(WandbLogger):
    """wandb that cannot stop a run: the first failure (network, disk, a wandb bug) prints one
    warning and turns this logger off; training and the CSV logger go on."""

    failed: str | None = None

    def _guard(self, what: str, call, *args, **kwargs):
        if self.failed is not None:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any wandb failure, reported once
            self.failed = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            import sys

            print(
                f"mmfw: warning: wandb failed during {what} ({self.failed}); wandb is off for "
                "the rest of this run, training goes on and csv/metrics.csv keeps every metric",
                file=sys.stderr,
            )
            return None

    def log_metrics(self, metrics, step=None) -> None:
        self._guard("log_metrics", super().log_metrics, metrics, step)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self._guard("log_hyperparams", super().log_hyperparams, params, *args, **kwargs)

    def log_table(self, *args, **kwargs) -> None:
        self._guard("log_table", super().log_table, *args, **kwargs)

    def log_experiment(self, payload: dict) -> None:
        """``experiment.log(payload)`` (tables, image panels), guarded like the rest."""
        self._guard("log", lambda: self.experiment.log(payload))

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        self._guard("after_save_checkpoint", super().after_save_checkpoint, checkpoint_callback)

    def finalize(self, status: str) -> None:
        self._guard("finalize", super().finalize, status)


def csv_logger(
    *,
    save_dir: str,
    run_name: str,
    group: str | None = None,
    run_id: str | None = None,
    resume_step: int | None = None,
) -> CSVLogger:
    """Metrics as CSV in ``<run dir>/csv/metrics.csv`` (no keys), written at every logging
    step, so a killed run keeps every row it logged."""
    return ResumableCSVLogger(
        save_dir=save_dir,
        name="csv",
        version="",
        resume_step=resume_step,
        flush_logs_every_n_steps=1,
    )


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, but an existing ``metrics.csv`` is continued, not deleted."""

    def __init__(self, *args, resume_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._resume_step = resume_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir, self._resume_step)
        return self._experiment


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self._resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
        # Rows up to the checkpoint stay; later ones are replayed by the resumed run.
        keep, later = [], []
        for row in rows:
            before = self._resume_step is not None and _step(row) < self._resume_step
            (keep if before else later).append(row)
        if later:
            n = len(list(path.parent.glob("metrics.superseded-*.csv"))) + 1
            with (path.parent / f"metrics.superseded-{n}.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=header)
                writer.writeheader()
                writer.writerows(later)
        tmp = path.with_name(".metrics.csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(keep)
        os.replace(tmp, path)
        self.metrics_keys = sorted(header)


def _step(row: dict) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0
