"""Assemble the config-diff report of a set of runs and write it to disk."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mmfw.report.collect import RunInfo, find_runs, load_run_info
from mmfw.report.diff import differing_keys, value_of
from mmfw.report.render import bar_chart, html_page, markdown_table, metric_columns, table_rows


@dataclass
class Report:
    runs: list[RunInfo]
    keys: list[str]
    metrics: list[str]
    markdown: str


def build_report(paths: list[str | Path], out: str | Path) -> Report:
    """Write report.md, report.json, report.html and figures/*.png to ``out``."""
    run_dirs = find_runs(paths)
    if not run_dirs:
        raise FileNotFoundError(
            f"no mmfw runs (folders with .hydra/config.yaml) under {list(map(str, paths))}"
        )
    runs = [load_run_info(p) for p in run_dirs]
    keys = differing_keys(runs)
    metrics = metric_columns(runs)
    root = (
        Path(os.path.commonpath([str(r.path) for r in runs]))
        if len(runs) > 1
        else runs[0].path.parent
    )
    header = ["run", "status", *keys, *metrics]
    rows = table_rows(runs, keys, metrics, root)
    notes = [
        f"{len(runs)} run(s) under {root}",
        "differing keys: " + (", ".join(keys) if keys else "none (the runs share one config)"),
    ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    labels = [
        " ".join(f"{k}={value_of(r, k)}" for k in keys) or row[0]
        for r, row in zip(runs, rows, strict=True)
    ]
    for m in metrics:
        if m.endswith("/accuracy"):
            rel = f"figures/{m.replace('/', '_')}.png"
            bar_chart(runs, labels, m, out / rel)
            figures.append(rel)
    md = "\n".join(
        ["# mmfw report", "", *[f"- {n}" for n in notes], "", markdown_table(header, rows), ""]
    )
    md += "".join(f"\n![{f}]({f})\n" for f in figures)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(html_page("mmfw report", header, rows, notes, figures))
    data = {
        "root": str(root),
        "differing_keys": keys,
        "metrics": metrics,
        "runs": [
            {
                "dir": str(r.path),
                "path": str(r.path),
                "status": r.status,
                "error": r.error,
                "values": {k: value_of(r, k) for k in keys},
                "metrics": {m: r.metrics.get(m) for m in metrics},
                "overrides": r.overrides,
            }
            for r in runs
        ],
    }
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str))
    return Report(runs, keys, metrics, markdown_table(header, rows))
