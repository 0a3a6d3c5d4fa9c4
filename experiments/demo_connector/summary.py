"""Print where the demo's runs, report and wandb files are; fail unless clearly above chance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

MARGIN = 0.15  # "clearly above chance": at least 15 points over a uniform guess


def main(sweep: str) -> int:
    root = Path(sweep)
    report = json.loads((root / "report.json").read_text())
    print("\n== mmfw demo ==")
    print(f"sweep:   {root}")
    print(f"report:  {root / 'report.md'}  (also report.html, report.json, figures/)")
    ok = True
    for run in report["runs"]:
        path = Path(run["path"])
        acc = run["metrics"].get("synthetic_magnifier/accuracy")
        chance = run["metrics"].get("synthetic_magnifier/chance")
        wandb_dirs = sorted(str(p) for p in (path / "wandb").glob("offline-run-*")) or sorted(
            str(p) for p in (path / "wandb").glob("run-*")
        )
        label = ", ".join(f"{k}={v}" for k, v in run["values"].items())
        print(f"run:     {path}  [{label}]")
        print(f"         accuracy {acc:.3f} vs chance {chance:.3f}")
        print(f"         wandb: {', '.join(wandb_dirs) or 'none'}")
        ok &= acc is not None and chance is not None and acc >= chance + MARGIN
    print("differing keys:", ", ".join(report["differing_keys"]))
    if not ok:
        print(f"FAILED: a run is not {MARGIN:.0%} above chance", file=sys.stderr)
        return 1
    print("OK: every run is clearly above chance")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
