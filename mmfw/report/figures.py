"""Figures beyond the per-run bars: a metric against a swept numeric key (error bars over
seeds) and the training-loss curves of every run overlaid."""

from __future__ import annotations

import csv
from pathlib import Path

from mmfw.report.collect import RunInfo
from mmfw.report.groups import Group


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: Path) -> None:
    """Write ``fig`` to ``out`` (a PNG; folders made) and free it."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    pyplot().close(fig)


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metric_against_key(groups: list[Group], key: str, metric: str, out: Path) -> bool:
    """``metric`` (mean, error bar = std over seeds) against the numeric swept ``key``, one
    line per combination of the other keys. False when there is nothing to draw."""
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for g in groups:
        x = g.key.get(key)
        if not is_number(x) or metric not in g.mean:
            continue
        rest = ", ".join(f"{k}={v}" for k, v in g.key.items() if k != key) or metric
        lines.setdefault(rest, []).append((float(x), g.mean[metric], g.std.get(metric, 0.0)))
    if not lines or all(len(points) < 2 for points in lines.values()):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, points in lines.items():
        points.sort()
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                    marker="o", capsize=3, label=label)  # fmt: skip
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    if len(lines) > 1:
        ax.legend(fontsize=7)
    save(fig, out)
    return True


def loss_curve(run: RunInfo, column: str = "train/loss") -> list[tuple[int, float]]:
    path = run.path / "csv" / "metrics.csv"
    if not path.exists():
        return []
    points = []
    with path.open() as f:
        for row in csv.DictReader(f):
            if row.get(column) not in (None, "") and row.get("step") not in (None, ""):
                points.append((int(float(row["step"])), float(row[column])))
    return points


def loss_curves(runs: list[RunInfo], labels: list[str], out: Path) -> bool:
    curves = [(label, loss_curve(r)) for r, label in zip(runs, labels, strict=True)]
    curves = [(label, c) for label, c in curves if c]
    if not curves:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, c in curves:
        ax.plot([p[0] for p in c], [p[1] for p in c], label=label, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("train/loss")
    ax.legend(fontsize=6)
    save(fig, out)
    return True


def _grouped_bars(
    series: dict[str, list[float]], groups: list[str], ylabel: str, out: Path
) -> None:
    """Bars of several series side by side over ``groups`` (x axis)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(groups) * max(1, len(series)) ** 0.5), 3.4))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=label)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups, rotation=30, ha="right",
                  fontsize=8)  # fmt: skip
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    save(fig, out)


def per_category(runs: list[RunInfo], labels: list[str], benchmark: str, out: Path) -> bool:
    """Each run's accuracy per category of ``benchmark``."""
    have = [
        (r, label) for r, label in zip(runs, labels, strict=True) if benchmark in r.per_category
    ]
    if not have:
        return False
    cats = sorted({c for r, _ in have for c in r.per_category[benchmark]})
    series = {
        label: [float(r.per_category[benchmark].get(c, 0.0)) for c in cats] for r, label in have
    }
    _grouped_bars(series, cats, f"{benchmark} accuracy", out)
    return True


def data_ratios(
    runs: list[RunInfo], labels: list[str], out: Path, tolerance: float = 0.005
) -> bool:
    """Configured next to realized source fractions, when they differ in some run."""
    sources = sorted(
        {k.split("/", 2)[2] for r in runs for k in r.metrics if k.startswith("data/configured/")}
    )
    if len(sources) < 2:
        return False
    differ = any(
        abs(
            float(r.metrics.get(f"data/configured/{s}", 0))
            - float(r.metrics.get(f"data/realized/{s}", 0))
        )
        > tolerance
        for r in runs
        for s in sources
        if f"data/realized/{s}" in r.metrics
    )
    if not differ:
        return False
    series = {}
    for r, label in zip(runs, labels, strict=True):
        if f"data/realized/{sources[0]}" not in r.metrics:
            continue
        series[f"{label} configured"] = [
            float(r.metrics.get(f"data/configured/{s}", 0)) for s in sources
        ]
        series[f"{label} realized"] = [
            float(r.metrics.get(f"data/realized/{s}", 0)) for s in sources
        ]
    _grouped_bars(series, sources, "share of samples", out)
    return True
