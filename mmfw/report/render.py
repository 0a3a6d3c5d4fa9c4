"""Render the comparison as markdown, JSON, HTML and bar charts."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from mmfw.eval.scores import is_score
from mmfw.report.collect import RunInfo
from mmfw.report.diff import value_of

HEADLINE = ("step", "train/loss", "val/loss", "train/tokens_per_s")


def metric_columns(runs: list[RunInfo]) -> list[str]:
    """Benchmark accuracies (and their chance level) first, then the headline training numbers."""
    keys = {k for r in runs for k, v in r.metrics.items() if isinstance(v, int | float)}
    evals = sorted(k for k in keys if "/" in k and is_score(k.rsplit("/", 1)[1])
                   and not k.startswith(("data/", "eval/")))  # fmt: skip
    return evals + [k for k in HEADLINE if k in keys]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def table_rows(
    runs: list[RunInfo], keys: list[str], metrics: list[str], root: Path | None
) -> list[list[str]]:
    rows = []
    for r in runs:
        name = (
            str(r.path.relative_to(root)) if root and r.path.is_relative_to(root) else str(r.path)
        )
        rows.append(
            [
                name,
                r.status
                + (
                    f": {r.error.strip().splitlines()[-1]}"
                    if r.error and r.error.strip() and r.status != "finished"
                    else ""
                ),
                *(_fmt(value_of(r, k)) for k in keys),
                *(_fmt(r.metrics.get(m, "—")) for m in metrics),
            ]
        )
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines)


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{trs}</table>"


def html_page(
    title: str,
    header: list[str],
    rows: list[list[str]],
    notes: list[str],
    figures: list[str],
    root: Path | None = None,
    sections: list[tuple[str, list[str], list[list[str]]]] = (),
) -> str:
    """A self-contained page: figures under ``root`` are inlined as data URIs; ``sections``
    are extra (title, header, rows) tables placed before the runs table."""
    import base64

    def src(f: str) -> str:
        if root is not None and (root / f).exists():
            return "data:image/png;base64," + base64.b64encode((root / f).read_bytes()).decode()
        return html.escape(f)

    extra = "".join(f"<h2>{html.escape(t)}</h2>{_table_html(h, r)}" for t, h, r in sections)
    imgs = "".join(f'<p><img src="{src(f)}" alt="{html.escape(f)}"></p>' for f in figures)
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><ul>{items}</ul>{extra}<h2>runs</h2>"
        f"{_table_html(header, rows)}{imgs}</body></html>"
    )


def bar_chart(runs: list[RunInfo], labels: list[str], metric: str, out: Path) -> None:
    from mmfw.report.figures import pyplot, save

    plt = pyplot()
    values = [
        float(r.metrics.get(metric) if r.metrics.get(metric) is not None else "nan") for r in runs
    ]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(runs)), 3))
    ax.bar(range(len(runs)), values)
    ax.set_xticks(range(len(runs)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    chance_key = metric.replace("/accuracy", "/chance")
    chance = [r.metrics.get(chance_key) for r in runs if chance_key != metric]
    if chance and chance[0] is not None:
        ax.axhline(float(chance[0]), color="gray", linestyle="--", label="chance")
        ax.legend()
    save(fig, out)
