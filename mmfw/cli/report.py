"""``mmfw-report <run or sweep dirs...> [--out DIR] [--baseline RUN] [--metrics M ...]``:
config-diff report of runs, seed groups as mean ± spread."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmfw-report", description=__doc__)
    parser.add_argument("dirs", nargs="+", help="run directories or sweep directories holding runs")
    parser.add_argument(
        "--out", help="output folder (default: the single directory given, else ./report)"
    )
    parser.add_argument("--baseline", help="a run (directory) the others are compared with")
    parser.add_argument(
        "--metrics", nargs="+", help="metrics (or benchmark names) to show (default: all)"
    )
    args = parser.parse_args(argv)
    from mmfw.report.build import build_report

    out = (
        Path(args.out)
        if args.out
        else (Path(args.dirs[0]) if len(args.dirs) == 1 else Path("report"))
    )
    try:
        report = build_report(args.dirs, out, baseline=args.baseline, only_metrics=args.metrics)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as e:
        print(f"mmfw-report: error: {e}", file=sys.stderr)
        return 2
    print(report.markdown)
    print(f"\nreport: {out / 'report.md'} (also report.html, report.json, figures/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
