"""Print a study's headline: where its runs and report are, and each seed group's mean ± std of
the watched metric against chance. Exits non-zero when a run did not finish or when no group
is clearly above chance (the pipeline did not learn).

    python experiments/summary.py <report dir> <metric>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MARGIN = 0.15  # "clearly above chance": at least 15 points over a uniform guess


def main(report_dir: str, metric: str) -> int:
    root = Path(report_dir)
    report = json.loads((root / "report.json").read_text())
    chance_key = metric.rsplit("/", 1)[0] + "/chance"
    print(f"\n== {root} ==")
    print(f"report:  {root / 'report.md'}  (also report.html, report.json, figures/)")
    print(f"runs:    {report['root']}")
    print(f"swept:   {', '.join(report['differing_keys'])}\n")
    keys = list(report["groups"][0]["key"])
    print(f"| {' | '.join(keys)} | n | {metric} (mean ± std) | chance |")
    print("|---" * (len(keys) + 3) + "|")
    best, chance = 0.0, None
    for group in report["groups"]:
        mean = group["mean"].get(metric)
        std = group["std"].get(metric) or 0.0
        chance = group["mean"].get(chance_key, chance)
        values = " | ".join(str(v) for v in group["key"].values())
        shown = "—" if mean is None else f"{mean:.1%} ± {std:.1%}"
        print(
            f"| {values} | {group['n']} | {shown} | {chance if chance is None else f'{chance:.0%}'} |"
        )
        best = max(best, mean or 0.0)
    unfinished = [r["dir"] for r in report["runs"] if r["status"] != "finished"]
    if unfinished:
        print(f"FAILED: runs did not finish: {', '.join(unfinished)}", file=sys.stderr)
        return 1
    if chance is not None and best < chance + MARGIN:
        print(f"FAILED: no group is {MARGIN:.0%} above chance", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
