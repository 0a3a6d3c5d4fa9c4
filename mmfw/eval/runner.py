"""Run a benchmark on a model and write ``eval/<name>/metrics.json`` + ``predictions.jsonl``."""

from __future__ import annotations

import json
import time
from pathlib import Path


def evaluate_benchmark(name: str, benchmark, model, processor, run_dir: str | Path) -> dict:
    """Evaluate, write the contract files, return the metrics."""
    t0 = time.perf_counter()
    predictions, metrics = benchmark.run(model, processor)
    metrics["seconds"] = round(time.perf_counter() - t0, 3)
    if metrics.get("skipped_rows"):
        import sys

        left_out = sum(metrics["skipped_rows"].values())
        print(
            f"mmfw: warning: benchmark {name}: {left_out} row(s) could not be used and are not in "
            f"the score: {benchmark.problems.summary()}",
            file=sys.stderr,
        )
    metrics["benchmark"] = name
    out = Path(run_dir) / "eval" / name
    out.mkdir(parents=True, exist_ok=True)
    with (out / "predictions.jsonl").open("w") as f:
        for p in predictions:
            f.write(json.dumps(p) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
