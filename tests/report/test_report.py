"""mmfw-report on hand-built run directories: nested and list keys, missing keys, a failed
run, seed groups with mean ± spread, a baseline with deltas, a self-contained HTML page."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from mmfw.report.build import build_report
from mmfw.report.groups import t975


def make_run(root: Path, name: str, config: dict, metrics: dict | None, status: str = "finished",
             error: str | None = None, losses: list[float] | None = None) -> Path:  # fmt: skip
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    record = {"status": status}
    if error:
        record["error"] = error
    (run / "run.json").write_text(json.dumps(record))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    if losses:
        (run / "csv").mkdir()
        lines = ["step,train/loss"] + [f"{i + 1},{v}" for i, v in enumerate(losses)]
        (run / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run


BASE = {"stage": {"lr": 1e-3}, "resolution": {"max_crops": 9, "pinpoints": [[336, 672]]},
        "trainer": {"max_steps": 100}}  # fmt: skip


def cfg(seed: int, crops: int, **extra) -> dict:
    c = json.loads(json.dumps(BASE))
    c["seed"] = seed
    c["resolution"]["max_crops"] = crops
    c.update(extra)
    return c


@pytest.fixture
def runs(tmp_path):
    accs = {(9, 0): 0.50, (9, 1): 0.60, (9, 2): 0.55, (25, 0): 0.70, (25, 1): 0.80, (25, 2): 0.75}
    for (crops, seed), acc in accs.items():
        make_run(tmp_path, f"hd{crops}_s{seed}", cfg(seed, crops),
                 {"bench/accuracy": acc, "bench/chance": 0.25, "train/loss": 1.0 - acc,
                  "params/trainable": 10, "params/total": 20},
                 losses=[2.0, 1.5, 1.0 - acc])  # fmt: skip
    make_run(tmp_path, "hd25_s3", cfg(3, 25), None, status="failed",
             error="Traceback ...\nRuntimeError: CUDA out of memory")  # fmt: skip
    extra = cfg(0, 25)
    extra["resolution"]["pinpoints"] = [[336, 672], [672, 336]]  # a list that differs
    make_run(tmp_path, "hd25_pins", extra, {"bench/accuracy": 0.9})
    return tmp_path


def test_seed_groups_mean_spread_and_interval(runs, tmp_path):
    report = build_report([runs], tmp_path / "out", baseline=str(runs / "hd9_s0"))
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["differing_keys"] == ["resolution.max_crops", "resolution.pinpoints", "seed"]
    groups = {(g["key"]["resolution.max_crops"], len(g["key"]["resolution.pinpoints"])): g
              for g in data["groups"]}  # fmt: skip
    hd9, hd25 = groups[(9, 1)], groups[(25, 1)]
    assert hd9["n"] == 3 and hd25["n"] == 3  # the failed run is in its group, not in the stats
    assert hd25["unfinished"] == 1 and len(hd25["runs"]) == 4
    assert hd9["mean"]["bench/accuracy"] == pytest.approx(0.55)
    assert hd25["mean"]["bench/accuracy"] == pytest.approx(0.75)
    sd = statistics.stdev([0.5, 0.6, 0.55])
    assert hd9["std"]["bench/accuracy"] == pytest.approx(sd)
    assert hd9["ci95"]["bench/accuracy"] == pytest.approx(t975(2) * sd / 3**0.5)
    assert groups[(25, 2)]["n"] == 1
    assert data["baseline"].endswith("hd9_s0")
    failed = [r for r in data["runs"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["metrics"]["bench/accuracy"] is None
    assert all({"dir", "status", "config", "metrics"} <= set(r) for r in data["runs"])
    md = (tmp_path / "out" / "report.md").read_text()
    assert "failed: hd25_s3: RuntimeError: CUDA out of memory" in md
    assert "0.75 ± 0.05" in md and "(+0.2)" in md  # group delta against the baseline's group
    assert "shared: " in md and "stage.lr=0.001" in md
    assert len(report.groups) == 3


def test_html_is_self_contained_with_every_figure(runs, tmp_path):
    for i, run in enumerate(sorted(runs.glob("hd*_s*"))):
        (run / "eval" / "bench").mkdir(parents=True)
        (run / "eval" / "bench" / "metrics.json").write_text(
            json.dumps({"accuracy": 0.5, "per_category": {"small": 0.4, "large": 0.6 + i / 100}})
        )
        metrics = (
            json.loads((run / "metrics.json").read_text())
            if (run / "metrics.json").exists()
            else None
        )
        if metrics is not None:  # a mixture whose realized shares drift from the configured ones
            metrics.update({"data/configured/a": 0.5, "data/configured/b": 0.5,
                            "data/realized/a": 0.6, "data/realized/b": 0.4})  # fmt: skip
            (run / "metrics.json").write_text(json.dumps(metrics))
    build_report([runs], tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert "bench_accuracy_vs_resolution.max_crops.png" in figures
    assert "train_loss.png" in figures
    assert "bench_per_category.png" in figures and "data_configured_vs_realized.png" in figures
    assert page.count("data:image/png;base64,") == len(figures)
    assert "<h2>groups" in page and "<h2>per run" in page


def test_runs_differing_only_by_seed_form_one_group(tmp_path):
    for seed in range(3):  # data.seed follows seed (data.seed: ${seed}), as in the recipes
        make_run(
            tmp_path,
            f"s{seed}",
            cfg(seed, 9, data={"seed": seed}),
            {"bench/accuracy": 0.4 + 0.1 * seed},
        )
    build_report([tmp_path], tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["differing_keys"] == ["seed"]  # data.seed follows it
    assert len(data["groups"]) == 1 and data["groups"][0]["n"] == 3
    assert data["groups"][0]["mean"]["bench/accuracy"] == pytest.approx(0.5)


def test_a_missing_key_differs_and_a_bad_baseline_names_the_runs(tmp_path):
    make_run(tmp_path, "a", cfg(0, 9), {"bench/accuracy": 0.5})
    make_run(tmp_path, "b", cfg(0, 9, extra={"newline": True}), {"bench/accuracy": 0.6})
    build_report([tmp_path], tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["differing_keys"] == ["extra.newline"]
    assert data["runs"][0]["config"]["extra.newline"] == "—"
    with pytest.raises(FileNotFoundError, match="is not one of the runs"):
        build_report([tmp_path], tmp_path / "out2", baseline="nope")


def test_interpolated_copies_follow_the_overridden_key(tmp_path):
    # `generator: ${synthetic}` copies synthetic.* into the data sources and benchmarks
    for i, prompt in enumerate(["Answer briefly.", None]):
        task = {"format_prompt": prompt, "canvas": 64}
        run = make_run(tmp_path, f"r{i}", cfg(0, 9, synthetic=task,
                       data={"sources": {"m": {"generator": task}}},
                       benchmarks={"b": {"generator": task}}), {"b/accuracy": 0.5})  # fmt: skip
        (run / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump([f"synthetic.format_prompt={prompt}"])
        )
    build_report([tmp_path], tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["differing_keys"] == ["synthetic.format_prompt"]
