"""Print a study's headline: where its runs and report are, each seed group's mean ± std of the
watched metric against chance, and the report's verdicts for it (each group against the
baseline group, and the trend along a numeric swept key). Exits non-zero when a run did not
finish or when no group is clearly above chance (the pipeline did not learn). ``--expect
GROUP=VERDICT`` prints whether the report's verdict for that group is the paper's (a result
either way, not a failure of the run).

    python experiments/summary.py <report dir> <metric> [--expect resolution.max_crops=9=higher]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MARGIN = 0.15  # "clearly above chance": at least 15 points over a uniform guess


def _label(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report_dir")
    parser.add_argument("metric")
    parser.add_argument("--expect", action="append", default=[], metavar="GROUP=VERDICT")
    args = parser.parse_args(argv)
    root, metric = Path(args.report_dir), args.metric
    report = json.loads((root / "report.json").read_text())
    chance_key = metric.rsplit("/", 1)[0] + "/chance"
    print(f"\n== {root} ==")
    print(f"report:  {root / 'report.md'}  (also report.html, report.json, figures/)")
    print(f"runs:    {(root / report['root']).resolve()}")
    print(f"swept:   {', '.join(report['differing_keys'])}")
    print(f"baseline group: {report.get('baseline_group')}\n")
    print(f"| group | n | {metric} (mean ± std) | vs baseline (95% interval) | p | verdict |")
    print("|---|---|---|---|---|---|")
    best, chance, verdicts = 0.0, None, {}
    for group in report["groups"]:
        mean = group["mean"].get(metric)
        std = group["std"].get(metric) or 0.0
        chance = group["mean"].get(chance_key, chance)
        shown = "—" if mean is None else f"{mean:.1%} ± {std:.1%}"
        v = group.get("vs_baseline", {}).get(metric)
        label = _label(group["key"])
        if v:
            verdicts[label.lower()] = v["verdict"]  # Hydra's `false` is the report's False
            low, high = v["ci95"]
            cells = f"{v['delta']:+.1%} [{low:+.1%}, {high:+.1%}] | {v['p']:.4f} | {v['verdict']}"
        else:
            cells = "baseline | | " if group.get("is_baseline") else "— | | "
        print(f"| {label} | {group['n']} | {shown} | {cells} |")
        best = max(best, mean or 0.0)
    print(f"\nchance: {_pct(chance)}")
    for t in report.get("trends", []):
        if t["metric"] == metric:
            where = f" ({_label(t['where'])})" if t.get("where") else ""
            low, high = t["ci95"]
            print(f"trend along {t['key']}{where}: {t['slope']:+.4f} per unit [{low:+.4f}, "
                  f"{high:+.4f}], p {t['p']:.4f}, {t['n']} runs: {t['verdict']}")  # fmt: skip
    if metric in report.get("constant_metrics", {}):
        print(f"{metric} is {report['constant_metrics'][metric]} in every run: nothing to compare")
    failed = 0
    unfinished = [r["dir"] for r in report["runs"] if r["status"] != "finished"]
    if unfinished:
        print(f"FAILED: runs did not finish: {', '.join(unfinished)}", file=sys.stderr)
        failed = 1
    if chance is not None and best < chance + MARGIN:
        print(f"FAILED: no group is {MARGIN:.0%} above chance", file=sys.stderr)
        failed = 1
    for expect in args.expect:
        group, want = expect.rsplit("=", 1)
        got = verdicts.get(group.lower())
        word = "REPRODUCED" if got == want else "NOT REPRODUCED"
        print(f"{word}: {group} against the baseline: {got} (the paper's direction: {want})")
    return failed


if __name__ == "__main__":
    sys.exit(main())
