"""Run a benchmark on a model and write ``eval/<name>/metrics.json`` + ``predictions.jsonl``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mmfw.run_dir.files import write_text


def evaluate_benchmark(
    name: str,
    benchmark,
    model,
    processor,
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    provenance: dict | None = None,
) -> dict:
    """Evaluate, write the contract files, return the metrics.

    ``out_dir``: where the files go (default ``<run_dir>/eval/<name>``). ``provenance``: what
    was evaluated (``checkpoint``, ``step``, ``run_status``), recorded in metrics.json."""
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
    metrics.update(provenance or {})
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "eval" / name
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in predictions))
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
