"""The report's headline: which group is the baseline, each group against it, trends along
numeric swept keys, and the metrics that cannot be compared because no run differs in them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mmfw.report.collect import RunInfo
from mmfw.report.figures import is_number
from mmfw.report.groups import Group
from mmfw.report.verdicts import Comparison, Trend, trend, welch


@dataclass
class Baseline:
    """How each group finds the group it is compared with.

    ``run``: one fixed group (``--baseline <run dir>``). Otherwise ``key`` = ``value``: the
    group with that value of ``key`` and the same values of every other swept key (so a
    connector sweep crossed with a data sweep compares connectors within each data setting).
    """

    description: str
    key: str | None = None
    value: Any = None
    group: Group | None = None

    def of(self, g: Group, groups: list[Group]) -> Group | None:
        """``g``'s baseline: the group with the baseline value and ``g``'s other values, else
        the only group with the baseline value (another key that moves with this one, e.g.
        more steps for more sizes, is part of the arm, not a setting to stratify by)."""
        if self.group is not None:
            return self.group
        want = {**g.key, self.key: self.value}
        match = next((b for b in groups if _same(b.key, want)), None)
        if match is None:
            value = json.dumps(self.value, sort_keys=True, default=str)
            only = [
                b
                for b in groups
                if json.dumps(b.key[self.key], sort_keys=True, default=str) == value
            ]
            match = only[0] if len(only) == 1 else None
        return match


@dataclass
class Headline:
    baseline: Baseline | None
    comparisons: dict[int, dict[str, Comparison]] = field(default_factory=dict)  # group index →
    trends: list[Trend] = field(default_factory=list)
    constant: dict[str, Any] = field(default_factory=dict)  # metric → its one value


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def order_groups(groups: list[Group], keys: list[str]) -> list[Group]:
    """Groups in the order of their swept keys: numeric values ascending, other values in the
    order they first appear (the sweep's order of choices)."""
    firsts: dict[str, list] = {k: [] for k in keys}
    for g in groups:
        for k in keys:
            v = json.dumps(g.key.get(k), sort_keys=True, default=str)
            if v not in firsts[k]:
                firsts[k].append(v)

    def rank(g: Group) -> tuple:
        out = []
        for k in keys:
            v = g.key.get(k)
            out.append(
                (0, float(v), "")
                if is_number(v)
                else (1, firsts[k].index(json.dumps(v, sort_keys=True, default=str)), "")
            )
        return tuple(out)

    return sorted(groups, key=rank)


def constant_metrics(runs: list[RunInfo], metrics: list[str]) -> dict[str, Any]:
    """Metrics with one value in every finished run that has them (e.g. saturated at 100%)."""
    done = [r for r in runs if r.status == "finished"]
    out = {}
    for m in metrics:
        values = [r.metrics[m] for r in done if is_number(r.metrics.get(m))]
        if len(values) > 1 and len(set(values)) == 1:
            out[m] = values[0]
    return out


def parse_baseline(spec: str | None, groups: list[Group], keys: list[str], run) -> Baseline | None:
    """The baseline from ``--baseline`` (a run, or ``key=value``), else the first value of the
    first swept key. None when there is nothing to compare (a single group)."""
    if len(groups) < 2 or not keys:
        return None
    if run is not None:
        group = next(g for g in groups if run in g.runs)
        return Baseline(f"the group of run {spec} ({group.label()})", group=group)
    if spec and "=" in spec:
        key, raw = spec.split("=", 1)
        if key not in keys:
            raise ValueError(f"--baseline {spec}: {key} is not a swept key ({', '.join(keys)})")
        values = {json.dumps(g.key[key], default=str): g.key[key] for g in groups}
        match = [v for text, v in values.items() if str(v) == raw or text == raw]
        if not match:
            shown = ", ".join(str(v) for v in values.values())
            raise ValueError(f"--baseline {spec}: {key} has no value {raw} (values: {shown})")
        return Baseline(f"{key}={match[0]} (given with --baseline)", key=key, value=match[0])
    key = keys[0]
    value = groups[0].key[key]
    rest = " within each setting of " + ", ".join(keys[1:]) if len(keys) > 1 else ""
    return Baseline(
        f"{key}={value}: the first value of the swept key{rest} (choose another with --baseline)",
        key=key,
        value=value,
    )


def values_of(g: Group, metric: str) -> list[float]:
    return [float(r.metrics[metric]) for r in g.finished if is_number(r.metrics.get(metric))]


def build_headline(
    groups: list[Group], keys: list[str], metrics: list[str], runs: list[RunInfo], baseline
) -> Headline:
    """Comparisons of every group with its baseline and trends of every metric that varies."""
    constant = constant_metrics(runs, metrics)
    tested = [m for m in metrics if m not in constant and not m.endswith("/chance")]
    head = Headline(baseline, constant=constant)
    if baseline is not None:
        for i, g in enumerate(groups):
            base = baseline.of(g, groups)
            if base is None or base is g:
                continue
            for m in tested:
                c = welch(values_of(base, m), values_of(g, m))
                if c is not None:
                    head.comparisons.setdefault(i, {})[m] = c
    for key in keys:
        if not all(is_number(g.key.get(key)) for g in groups):
            continue
        others = [k for k in keys if k != key]
        strata: dict[str, list[Group]] = {}
        for g in groups:
            where = {k: g.key[k] for k in others}
            strata.setdefault(json.dumps(where, sort_keys=True, default=str), []).append(g)
        for members in strata.values():
            where = {k: members[0].key[k] for k in others}
            for m in tested:
                xs, ys = [], []
                for g in members:
                    v = values_of(g, m)
                    xs += [float(g.key[key])] * len(v)
                    ys += v
                t = trend(key, m, xs, ys, where)
                if t is not None:
                    head.trends.append(t)
    return head


def headline_tables(
    head: Headline, groups: list[Group], metrics: list[str]
) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) sections for report.md / report.html, verdicts first."""
    sections = []
    rows = []
    for i, comps in head.comparisons.items():
        g = groups[i]
        base = head.baseline.of(g, groups) if head.baseline else None
        for m in metrics:
            c = comps.get(m)
            if c is None:
                continue
            rows.append([
                g.label(), base.label() if base else "", m, f"{c.delta:+.4g}",
                f"[{c.ci95[0]:+.4g}, {c.ci95[1]:+.4g}]", _p(c.p), f"{c.n[1]} vs {c.n[0]}",
                c.verdict,
            ])  # fmt: skip
    if rows:
        title = "verdicts: each group against its baseline (Welch's t, 95% interval)"
        header = ["group", "baseline", "metric", "difference", "95% interval", "p", "n",
                  "verdict"]  # fmt: skip
        sections.append((title, header, rows))
    if head.trends:
        t_rows = [
            [t.key, ", ".join(f"{k}={v}" for k, v in t.where.items()) or "all runs", t.metric,
             f"{t.slope:+.4g}", f"[{t.ci95[0]:+.4g}, {t.ci95[1]:+.4g}]", _p(t.p), str(t.n),
             t.verdict]
            for t in head.trends
        ]  # fmt: skip
        sections.append((
            "trends: least-squares slope over runs against each numeric swept key (95% interval)",
            ["key", "where", "metric", "slope per unit", "95% interval", "p", "runs", "verdict"],
            t_rows,
        ))  # fmt: skip
    return sections


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
