"""The wandb run record both sources fill: :class:`WandbRun` (config, summary, state and the
``train/loss`` history of one run, read online from the public API or offline from a run
folder's transaction log), plus the few helpers both readers share to turn logged history rows
into ``(step, loss)`` points; it imports nothing of mmfw, so every wandb module can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STEP_KEYS = ("trainer/global_step", "_step")  # x axis of the loss curve, first present wins
LOSS = "train/loss"


@dataclass
class WandbRun:
    """One wandb run, as either source reads it."""

    id: str
    name: str
    project: str
    entity: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    state: str = "unknown"  # wandb's word: finished | failed | crashed | running | ...
    config: dict[str, Any] = field(default_factory=dict)  # nested, as logged
    summary: dict[str, Any] = field(default_factory=dict)  # last value of each key
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, train/loss)
    source: str = ""  # entity/project/id, or the offline folder(s)
    status: str | None = None  # mmfw status, when a run.json next to the run says it
    error: str | None = None


def loss_points(rows: list[dict]) -> list[tuple[int, float]]:
    """``(step, train/loss)`` of the history rows that hold both (step: first of STEP_KEYS)."""
    out = []
    for row in rows:
        step = next((row[k] for k in STEP_KEYS if is_number(row.get(k))), None)
        if step is not None and is_number(row.get(LOSS)):
            out.append((int(step), float(row[LOSS])))
    return out


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
