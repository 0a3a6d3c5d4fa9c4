"""Seed aggregation: runs that differ only in ``seed`` are one group, read as mean ± spread."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from mmfw.report.collect import RunInfo
from mmfw.report.diff import value_of

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (beyond: 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t975(dof: int) -> float:
    return _T975[dof - 1] if 1 <= dof <= len(_T975) else 1.96


def seed_like(key: str, runs: list[RunInfo]) -> bool:
    """``seed`` itself, or a key that follows it in every run (``data.seed: ${seed}``)."""
    if key == "seed":
        return True
    return key.endswith(".seed") and all(value_of(r, key) == value_of(r, "seed") for r in runs)


@dataclass
class Group:
    """Runs with the same values of every differing key except ``seed``."""

    key: dict[str, Any]
    runs: list[RunInfo] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    ci95: dict[str, float] = field(default_factory=dict)  # half-width of the 95% interval

    @property
    def finished(self) -> list[RunInfo]:
        return [r for r in self.runs if r.status == "finished"]

    @property
    def n(self) -> int:
        """Runs that count in the statistics (finished ones)."""
        return len(self.finished)

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "all runs"


def seed_groups(runs: list[RunInfo], keys: list[str], metrics: list[str]) -> list[Group]:
    """One group per combination of the differing keys other than the seed (and keys that
    follow it), in run order.
    Failed and unfinished runs are left out of the statistics (they are listed on their own)."""
    others = [k for k in keys if not seed_like(k, runs)]
    groups: dict[str, Group] = {}
    for run in runs:
        key = {k: value_of(run, k) for k in others}
        ident = json.dumps(key, sort_keys=True, default=str)
        groups.setdefault(ident, Group(key)).runs.append(run)
    for g in groups.values():
        done = [r for r in g.runs if r.status == "finished"]
        for m in metrics:
            values = [
                float(r.metrics[m]) for r in done if isinstance(r.metrics.get(m), int | float)
            ]
            if not values:
                continue
            g.mean[m] = statistics.fmean(values)
            if len(values) > 1:
                g.std[m] = statistics.stdev(values)
                g.ci95[m] = t975(len(values) - 1) * g.std[m] / math.sqrt(len(values))
            else:
                g.std[m] = 0.0
    return list(groups.values())


def format_mean(g: Group, metric: str) -> str:
    if metric not in g.mean:
        return "—"
    if g.n > 1 and metric in g.ci95:
        return f"{g.mean[metric]:.4g} ± {g.std[metric]:.2g} (95% ±{g.ci95[metric]:.2g})"
    return f"{g.mean[metric]:.4g}"
