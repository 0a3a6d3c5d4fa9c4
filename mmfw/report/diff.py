"""Which configuration differs across runs: group choices first, then individual keys."""

from __future__ import annotations

import json
from typing import Any

from mmfw.report.collect import RunInfo

MISSING = "—"


def _package(group: str) -> str:
    """Config path a group's choice fills: ``benchmark@benchmarks.x`` → ``benchmarks.x``."""
    return group.split("@", 1)[1] if "@" in group else group.replace("/", ".")


def _differs(values: list[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1


def differing_choices(runs: list[RunInfo]) -> list[str]:
    groups = sorted({g for r in runs for g in r.choices})
    return [g for g in groups if _differs([r.choices.get(g) for r in runs])]


def differing_keys(runs: list[RunInfo]) -> list[str]:
    """Group choices that differ (as ``group``), then dotted keys that differ.

    Keys inside a group whose choice differs are implied by that choice and left out.
    """
    if len(runs) < 2:
        return []
    groups = differing_choices(runs)
    covered = [_package(g) for g in groups]
    keys = sorted({k for r in runs for k in r.config})
    rest = [
        k
        for k in keys
        if _differs([r.config.get(k, MISSING) for r in runs])
        and not any(k == p or k.startswith(p + ".") for p in covered)
    ]
    return [*groups, *rest]


def value_of(run: RunInfo, key: str) -> Any:
    """A run's value for a differing key (a group choice or a dotted config key)."""
    if key in run.choices:
        return run.choices[key]
    return run.config.get(key, MISSING)
