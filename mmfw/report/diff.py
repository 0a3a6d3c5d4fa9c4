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

    Keys inside a group whose choice differs are implied by that choice and left out, and so
    are copies that follow another differing key (``followers``).
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
    follows = followers(rest, runs)
    return [*groups, *(k for k in rest if k not in follows)]


def followers(keys: list[str], runs: list[RunInfo]) -> dict[str, str]:
    """Differing keys that are copies of another: ``{copy: source}``.

    An interpolation such as ``generator: ${synthetic}`` copies ``synthetic.format_prompt`` to
    ``data.sources.x.generator.format_prompt``; ``data.seed: ${seed}`` copies ``seed``. A key
    follows a source that ends in the same last name and has its value in every run; the
    source is the key named on the command line, else the shortest.
    """
    named = {o.split("=", 1)[0].lstrip("+~") for r in runs for o in r.overrides}
    vectors = {k: json.dumps([r.config.get(k, MISSING) for r in runs], default=str) for k in keys}
    out: dict[str, str] = {}
    for k in keys:
        last = k.rsplit(".", 1)[-1]
        sources = [
            p for p in keys
            if p != k and p.rsplit(".", 1)[-1] == last and vectors[p] == vectors[k]
        ]  # fmt: skip
        if not sources:
            continue
        best = min([k, *sources], key=lambda x: (x not in named, len(x), x))
        if best != k:
            out[k] = best
    return out


def value_of(run: RunInfo, key: str) -> Any:
    """A run's value for a differing key (a group choice or a dotted config key)."""
    if key in run.choices:
        return run.choices[key]
    return run.config.get(key, MISSING)
