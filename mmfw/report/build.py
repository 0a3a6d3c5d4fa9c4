"""Assemble the config-diff report of a set of runs and write it to disk."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mmfw.eval.scores import is_score
from mmfw.report.collect import RunInfo, find_runs, load_run_info
from mmfw.report.diff import MISSING, differing_keys, value_of
from mmfw.report.figures import (
    data_ratios,
    is_number,
    loss_curves,
    metric_against_key,
    per_category,
)
from mmfw.report.groups import Group, format_mean, seed_groups, seed_like
from mmfw.report.headline import build_headline, headline_tables, order_groups, parse_baseline
from mmfw.report.optuna import find_studies, optuna_json, optuna_sections
from mmfw.report.render import bar_chart, html_page, markdown_table, metric_columns, table_rows

# Settings worth showing even when every run shares them (the "shared settings" block).
SHARED = ("experiment", "encoder", "connector", "llm", "resolution", "data", "stage", "trainer",
          "stage.lr", "optim.warmup_ratio", "trainer.max_steps", "data.batch_size",
          "data.global_batch_size", "seed")  # fmt: skip
INFO = ("params/trainable", "params/total", "data/image_tokens_per_sample", "time/fit_s",
        "train/tokens_per_s")  # fmt: skip


@dataclass
class Report:
    runs: list[RunInfo]
    keys: list[str]
    metrics: list[str]
    markdown: str
    groups: list[Group]


def _name(run: RunInfo, root: Path) -> str:
    return str(run.path.relative_to(root)) if run.path.is_relative_to(root) else str(run.path)


def _find_baseline(runs: list[RunInfo], baseline: str | None, root: Path) -> RunInfo | None:
    """The run ``--baseline`` names; None for no baseline or a ``key=value`` group selector."""
    if baseline is None or ("=" in baseline and not Path(baseline).exists()):
        return None
    for r in runs:
        if (
            str(r.path) == baseline
            or _name(r, root) == baseline
            or r.path == Path(baseline).resolve()
        ):
            return r
    names = ", ".join(_name(r, root) for r in runs)
    raise FileNotFoundError(f"--baseline {baseline} is not one of the runs ({names})")


def _shared(runs: list[RunInfo], keys: list[str]) -> dict:
    out = {}
    for k in SHARED:
        if k in keys:
            continue
        values = {json.dumps(value_of(r, k), default=str) for r in runs}
        value = value_of(runs[0], k)
        if len(values) == 1 and value != MISSING:
            out[k] = value
    return out


def _delta(value, base) -> str:
    if not (is_number(value) and is_number(base)):
        return ""
    return f" ({value - base:+.3g})"


def build_report(
    paths: list[str | Path],
    out: str | Path,
    baseline: str | None = None,
    only_metrics: list[str] | None = None,
) -> Report:
    """Write report.md, report.json, report.html and figures/*.png to ``out``."""
    run_dirs = find_runs(paths)
    if not run_dirs:
        raise FileNotFoundError(
            f"no mmfw runs (folders with .hydra/config.yaml) under {list(map(str, paths))}"
        )
    runs = [load_run_info(p) for p in run_dirs]
    return build_report_from_runs(runs, out, baseline, only_metrics, paths=paths)


def build_report_from_runs(
    runs: list[RunInfo],
    out: str | Path,
    baseline: str | None = None,
    only_metrics: list[str] | None = None,
    paths: tuple | list[str | Path] = (),
    source: str | None = None,
) -> Report:
    """:func:`build_report` of runs already read (from run dirs, or wandb); ``source`` says
    where they came from in the notes and report.json."""
    if not runs:
        raise FileNotFoundError(f"no runs to report{f' from {source}' if source else ''}")
    keys = differing_keys(runs)
    metrics = metric_columns(runs)
    if only_metrics:
        metrics = [m for m in metrics if m in only_metrics or m.split("/")[0] in only_metrics]
    root = (
        Path(os.path.commonpath([str(r.path) for r in runs]))
        if len(runs) > 1
        else runs[0].path.parent
    )
    base = _find_baseline(runs, baseline, root)
    swept = [k for k in keys if not seed_like(k, runs)]
    groups = order_groups(seed_groups(runs, keys, metrics), swept)
    try:
        reference = parse_baseline(baseline, groups, swept, base)
    except ValueError as e:
        raise FileNotFoundError(str(e)) from e
    head = build_headline(groups, swept, metrics, runs, reference)
    out = Path(out)
    header = ["run", "status", *keys, *metrics]
    rows = table_rows(runs, keys, metrics, root)
    if base is not None:
        for r, row in zip(runs, rows, strict=True):
            for j, m in enumerate(metrics):
                row[2 + len(keys) + j] += _delta(r.metrics.get(m), base.metrics.get(m))
    shared = _shared(runs, keys)
    notes = [
        f"{len(runs)} run(s) " + (f"from {source}" if source else f"under {_rel(root, out)}"),
        "differing keys: " + (", ".join(keys) if keys else "none (the runs share one config)"),
        "shared: " + ", ".join(f"{k}={v}" for k, v in shared.items()),
    ]
    if base is not None:
        notes.append(f"baseline run: {_name(base, root)} (deltas in parentheses)")
    if reference is not None:
        notes.append(f"baseline group: {reference.description}")
    for m, v in head.constant.items():
        notes.append(f"constant in every run (not plotted, not tested): {m} = {v}")
    unfinished = [r for r in runs if r.status != "finished"]
    for r in unfinished:
        last = (r.error or "").strip().splitlines()[-1:] or ["no error recorded"]
        notes.append(f"{r.status}: {_name(r, root)}: {last[0]}")
    out.mkdir(parents=True, exist_ok=True)
    sections = headline_tables(head, groups, metrics)
    if any(len(g.runs) > 1 for g in groups):
        varying = [m for m in metrics if not m.endswith("/chance")]  # chance is a constant
        g_header = ["group", "n", *varying]
        g_rows = []
        for g in groups:
            cells = [format_mean(g, m) for m in varying]
            base_group = reference.of(g, groups) if reference else None
            if base_group is not None and g is not base_group:
                cells = [
                    c + _delta(g.mean.get(m), base_group.mean.get(m))
                    for c, m in zip(cells, varying)
                ]
            g_rows.append([g.label(), str(g.n), *cells])
        sections.append(
            ("groups (runs that differ only in seed: mean ± std, 95% interval)", g_header, g_rows)
        )
    info_rows = [
        [_name(r, root), *(str(r.metrics.get(k, "—")) for k in INFO), _checkpoint(r, out)]
        for r in runs
    ]
    sections.append(("per run", ["run", *INFO, "checkpoint"], info_rows))
    studies = find_studies(paths, runs)  # Optuna sweeps: best trial, trials ranked
    sections += optuna_sections(studies, root)
    figures = []
    labels = [
        " ".join(f"{k}={value_of(r, k)}" for k in keys) or row[0]
        for r, row in zip(runs, rows, strict=True)
    ]
    for m in metrics:
        if is_score(m) and not m.endswith("chance") and m not in head.constant:
            rel = f"figures/{m.replace('/', '_')}.png"
            bar_chart(runs, labels, m, out / rel)
            figures.append(rel)
            for k in (k for k in keys if not seed_like(k, runs)):
                rel = f"figures/{m.replace('/', '_')}_vs_{k.replace('/', '_')}.png"
                if metric_against_key(groups, k, m, out / rel):
                    figures.append(rel)
    if loss_curves(runs, labels, out / "figures" / "train_loss.png"):
        figures.append("figures/train_loss.png")
    for bench in sorted({b for r in runs for b in r.per_category}):
        rel = f"figures/{bench}_per_category.png"
        if per_category(runs, labels, bench, out / rel):
            figures.append(rel)
    if data_ratios(runs, labels, out / "figures" / "data_configured_vs_realized.png"):
        figures.append("figures/data_configured_vs_realized.png")
    md_parts = ["# mmfw report", "", *[f"- {n}" for n in notes], ""]
    for title, h, r in sections:
        md_parts += [f"## {title}", "", markdown_table(h, r), ""]
    md_parts += ["## runs", "", markdown_table(header, rows), ""]
    md = "\n".join(md_parts) + "".join(f"\n![{f}]({f})\n" for f in figures)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(
        html_page("mmfw report", header, rows, notes, figures, root=out, sections=sections)
    )
    baselines = {id(reference.of(g, groups)) for g in groups} if reference else set()
    data = {
        "root": _rel(root, out),
        "differing_keys": keys,
        "baseline": None if base is None else _rel(base.path, out),
        "baseline_group": None if reference is None else reference.description,
        "constant_metrics": head.constant,
        "shared": shared,
        "metrics": metrics,
        "runs": [
            {
                "dir": _rel(r.path, out),
                "path": _rel(r.path, out),
                "status": r.status,
                "error": r.error,
                "config": {k: value_of(r, k) for k in keys},
                "values": {k: value_of(r, k) for k in keys},
                "metrics": {m: r.metrics.get(m) for m in metrics},
                "info": {k: r.metrics.get(k) for k in INFO} | {"checkpoint": _checkpoint(r, out)},
                "overrides": r.overrides,
            }
            for r in runs
        ],
        "groups": [
            {
                "key": g.key,
                "n": g.n,
                "unfinished": len(g.runs) - g.n,
                "runs": [_rel(r.path, out) for r in g.runs],
                "mean": g.mean,
                "std": g.std,
                "ci95": g.ci95,
                "is_baseline": id(g) in baselines,
                "vs_baseline": {m: c.as_json() for m, c in head.comparisons.get(i, {}).items()},
            }
            for i, g in enumerate(groups)
        ],
        "trends": [t.as_json() for t in head.trends],
    }
    if studies:
        data["optuna"] = optuna_json(studies)
    if source:
        data["source"] = source
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str))
    return Report(runs, keys, metrics, markdown_table(header, rows), groups)


def _checkpoint(run: RunInfo, out: Path) -> str:
    last = run.path / "checkpoints" / "last.ckpt"
    return _rel(last, out) if last.exists() else "—"


def _rel(path: Path, out: Path) -> str:
    """``path`` relative to the report's folder, so a report moved with its runs still points
    at them (and committed reports carry no machine's absolute paths)."""
    return os.path.relpath(Path(path).resolve(), Path(out).resolve())
