"""Loggers: wandb (offline unless a key is configured) and CSV, both under the run directory."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger


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
    project: str = "mmfw",
    entity: str | None = None,
    mode: str = "auto",
    tags: list[str] | None = None,
) -> WandbLogger:
    """A wandb run in ``<run dir>/wandb``.

    Yaml keys:
      project, entity: wandb project and team.
      mode: auto (online only with an API key) | online | offline | disabled.
      tags: run tags.
    ``run_name`` and ``group`` (the sweep, for multirun jobs) are wired by the run builder.
    """
    resolved = wandb_mode(mode)
    return WandbLogger(
        save_dir=save_dir,
        name=run_name,
        group=group,
        project=project,
        entity=entity,
        offline=resolved == "offline",
        mode=resolved,
        tags=list(tags or []),
    )


def csv_logger(*, save_dir: str, run_name: str, group: str | None = None) -> CSVLogger:
    """Metrics as CSV in ``<run dir>/csv/metrics.csv`` (no keys)."""
    return CSVLogger(save_dir=save_dir, name="csv", version="")
