"""Evaluation never reports a number that is not one: answer-less files run in inference
mode, each file has its own folder, a failing benchmark does not take the others down."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.data.synthetic.source import ensure_generated
from tests.conftest import SMALL_TASK, run_cli

TINY = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "data.batch_size=4",
]


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest")
    run = root / "run"
    run_cli(
        "mmfw-train", *TINY, "trainer.max_steps=2", "evaluate.at_end=false", f"hydra.run.dir={run}"
    )
    data = ensure_generated(
        instantiate(mmfw.compose(["experiment=tiny_llava", *SMALL_TASK]).synthetic),
        str(Path(mmfw.compose([]).paths.cache).expanduser()),
    )
    return run, data, root


def _tsv(
    src: Path, dst: Path, drop: str | None = None, image_path: str | None = None, rows: int = 6
) -> Path:
    table = list(csv.DictReader(src.open(), delimiter="\t"))[:rows]
    cols = [c for c in table[0] if c != drop]
    with dst.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        for r in table:
            if image_path:
                r["image_path"] = image_path
            w.writerow(r)
    return dst


def test_a_file_without_answers_runs_in_inference_mode(run_and_data):
    run, data, root = run_and_data
    tsv = _tsv(data / "test_mc.tsv", root / "MMBench_TEST_EN.tsv", drop="answer")
    tsv_image_root = f"benchmark.image_root={data}"
    out = run_cli(
        "mmfw-eval", f"run={run}", "benchmark=mc_tsv", f"benchmark.path={tsv}", tsv_image_root
    )
    folder = run / "eval" / "MMBench_TEST_EN"  # named after the file, not "mc_tsv"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (
        metrics["answers"] == "none" and "accuracy" not in metrics and metrics["num_questions"] == 6
    )
    preds = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and all(p["answer"] is None and p["correct"] is None for p in preds)
    assert all(p["prediction"] for p in preds)
    assert "has no answers: predictions written" in out.stderr


@pytest.mark.slow  # the default suite stays under 15 minutes; make test-full runs it
def test_two_files_of_one_benchmark_keep_separate_folders(run_and_data):
    run, data, root = run_and_data
    for name in ("first_half", "second_half"):
        tsv = _tsv(data / "test_mc.tsv", root / f"{name}.tsv")
        run_cli(
            "mmfw-eval",
            f"run={run}",
            "benchmark=mc_tsv",
            f"benchmark.path={tsv}",
            f"benchmark.image_root={data}",
        )
    for name in ("first_half", "second_half"):
        assert "accuracy" in json.loads((run / "eval" / name / "metrics.json").read_text())


def test_a_failing_benchmark_keeps_training_metrics_and_the_others(run_and_data, tmp_path):
    _, data, root = run_and_data
    bad = _tsv(data / "test_mc.tsv", root / "bad_images.tsv", image_path="images/test/nope.png")
    run_dir = tmp_path / "run"
    out = run_cli(
        "mmfw-train", *TINY, "trainer.max_steps=2", "benchmarks.synthetic_magnifier.max_samples=4",
        "+benchmark@benchmarks.broken=mc_tsv", f"benchmarks.broken.path={bad}",
        f"benchmarks.broken.image_root={data}", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert "benchmark broken failed" in out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["step"] == 2 and "train/loss" in metrics
    assert 0 <= metrics["synthetic_magnifier/accuracy"] <= 1
    assert "broken/accuracy" not in metrics and "cannot read the image" in metrics["broken/error"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and "broken" in record["eval_errors"]
