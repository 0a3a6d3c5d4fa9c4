"""``mmfw-report <run or sweep dirs...> [--out DIR] [--baseline RUN|KEY=VALUE] [--metrics M ...]``:
config-diff report of runs, seed groups as mean ± spread, and verdicts: each group against the
baseline group (Welch's t) and trends along numeric swept keys.
``mmfw-report --wandb [ENTITY/]PROJECT [--filters JSON] [--wandb-dir DIR]``: the same report of
wandb runs (online through the API; offline from run folders under DIR)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmfw-report", description=__doc__)
    parser.add_argument("dirs", nargs="*", help="run directories or sweep directories holding runs")
    parser.add_argument(
        "--out", help="output folder (default: the single directory given, else ./report)"
    )
    parser.add_argument(
        "--baseline",
        help="the group the others are compared with: a run (directory; its seed group), or "
        "KEY=VALUE of a swept key (compared within each setting of the other swept keys); "
        "default: the first value of the first swept key",
    )
    parser.add_argument(
        "--metrics", nargs="+", help="metrics (or benchmark names) to show (default: all)"
    )
    parser.add_argument(
        "--wandb", metavar="[ENTITY/]PROJECT", help="report wandb runs instead of run directories"
    )
    parser.add_argument(
        "--filters",
        help='wandb run filters, MongoDB-style JSON as the API takes them, e.g. \'{"group": "s1"}\'',
    )
    parser.add_argument(
        "--wandb-dir",
        help="read offline wandb runs (offline-run-*, run-* folders) under DIR; default when "
        "offline (WANDB_MODE=offline, no API key) or the API is unreachable: $WANDB_DIR or .",
    )
    args = parser.parse_args(argv)
    if bool(args.dirs) == bool(args.wandb):
        parser.error("give run directories or --wandb PROJECT (one of the two)")
    if not args.wandb and (args.filters or args.wandb_dir):
        parser.error("--filters and --wandb-dir need --wandb")
    from mmfw.report.build import build_report
    from mmfw.report.wandb_filters import FilterError

    out = (
        Path(args.out)
        if args.out
        else (Path(args.dirs[0]) if len(args.dirs) == 1 else Path("report"))
    )
    try:
        if args.wandb:
            report = _from_wandb(args, out)
        else:
            report = build_report(args.dirs, out, baseline=args.baseline, only_metrics=args.metrics)
    except (FileNotFoundError, NotADirectoryError, PermissionError, FilterError) as e:
        print(f"mmfw-report: error: {e}", file=sys.stderr)
        return 2
    print(report.markdown)
    print(f"\nreport: {out / 'report.md'} (also report.html, report.json, figures/)")
    return 0


def _from_wandb(args: argparse.Namespace, out: Path):
    from mmfw.report.build import build_report_from_runs
    from mmfw.report.wandb_filters import FilterError
    from mmfw.report.wandb_source import load_wandb

    try:
        filters = json.loads(args.filters) if args.filters else None
    except ValueError as e:
        raise FilterError(f"--filters {args.filters!r} is not JSON: {e}") from e
    if filters is not None and not isinstance(filters, dict):
        raise FilterError(f"--filters {args.filters!r}: give a JSON object")
    runs, source = load_wandb(args.wandb, out, filters, args.wandb_dir)
    return build_report_from_runs(
        runs, out, baseline=args.baseline, only_metrics=args.metrics, source=source
    )


if __name__ == "__main__":
    sys.exit(main())
