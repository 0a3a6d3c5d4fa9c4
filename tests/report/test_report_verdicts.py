"""Report verdicts on hand-built run dirs: Welch's t against the baseline group and the
least-squares trend, cross-checked with scipy's reference tests; identical groups give "no
difference"; a constant metric is named and not plotted; paths are relative to the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

from mmfw.report.build import build_report
from tests.report.test_report import cfg, make_run

LOW = [0.25, 0.27, 0.26, 0.31, 0.24]
MID = [0.90, 1.00, 0.95, 0.75, 1.00]
HIGH = [0.50, 0.90, 1.00, 0.80, 0.95]


def sweep(root: Path, accs: dict[int, list[float]], extra: dict | None = None) -> Path:
    """Runs hd<crops>_s<seed> (in reverse crop order on disk, so order is not by name)."""
    for crops, values in sorted(accs.items(), reverse=True):
        for seed, acc in enumerate(values):
            metrics = {"bench/accuracy": acc, "bench/chance": 0.25, "easy/accuracy": 1.0}
            make_run(root, f"z{100 - crops:03d}_hd{crops}_s{seed}", cfg(seed, crops, **(extra or {})),
                     metrics)  # fmt: skip
    return root


def report(root: Path, out: Path, **kw) -> dict:
    build_report([root], out, **kw)
    return json.loads((out / "report.json").read_text())


def test_welch_interval_and_p_match_scipy(tmp_path):
    data = report(sweep(tmp_path / "runs", {1: LOW, 4: MID, 9: HIGH}), tmp_path / "out")
    groups = data["groups"]
    assert [g["key"]["resolution.max_crops"] for g in groups] == [1, 4, 9]  # numeric order
    assert groups[0]["is_baseline"] and groups[0]["vs_baseline"] == {}
    assert "resolution.max_crops=1: the first value" in data["baseline_group"]
    for g, values in zip(groups[1:], (MID, HIGH), strict=True):
        got = g["vs_baseline"]["bench/accuracy"]
        ref = stats.ttest_ind(values, LOW, equal_var=False)
        low, high = ref.confidence_interval(0.95)
        assert got["delta"] == pytest.approx(sum(values) / 5 - sum(LOW) / 5)
        assert got["p"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert got["ci95"] == pytest.approx([low, high], rel=1e-9)
        assert got["verdict"] == "higher"
    # By hand: delta 0.92 - 0.266 = 0.654, se = sqrt(0.01075/5 + 0.00073/5) = 0.0479 on 4.54
    # Welch degrees of freedom (t = 2.65): 95% interval [0.527, 0.781].
    hd4 = groups[1]["vs_baseline"]["bench/accuracy"]
    assert hd4["delta"] == pytest.approx(0.654)
    assert hd4["ci95"] == pytest.approx([0.527, 0.781], abs=2e-3)


def test_trend_matches_linear_regression(tmp_path):
    data = report(sweep(tmp_path / "runs", {1: LOW, 4: MID, 9: HIGH}), tmp_path / "out")
    (t,) = [t for t in data["trends"] if t["metric"] == "bench/accuracy"]
    xs = [1] * 5 + [4] * 5 + [9] * 5
    ref = stats.linregress(xs, LOW + MID + HIGH)
    half = stats.t.ppf(0.975, 13) * ref.stderr
    assert t["key"] == "resolution.max_crops" and t["n"] == 15
    assert t["slope"] == pytest.approx(ref.slope)
    assert t["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert t["ci95"] == pytest.approx([ref.slope - half, ref.slope + half])
    assert t["verdict"] == "increasing"


def test_identical_groups_are_no_difference(tmp_path):
    data = report(sweep(tmp_path / "runs", {1: MID, 4: MID}), tmp_path / "out")
    got = data["groups"][1]["vs_baseline"]["bench/accuracy"]
    assert got["delta"] == pytest.approx(0.0, abs=1e-12) and got["p"] == pytest.approx(1.0)
    assert got["ci95"][0] < 0 < got["ci95"][1]
    assert got["verdict"] == "no difference at n=5"
    assert data["trends"][0]["verdict"] == "no trend at n=10"
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.index("## verdicts") < md.index("## groups")  # the headline comes first
    assert "no difference at n=5" in md


def test_small_difference_within_noise_is_no_difference(tmp_path):
    shifted = [v - 0.05 for v in HIGH]
    data = report(sweep(tmp_path / "runs", {1: HIGH, 4: shifted}), tmp_path / "out")
    got = data["groups"][1]["vs_baseline"]["bench/accuracy"]
    assert got["delta"] == pytest.approx(-0.05) and got["verdict"] == "no difference at n=5"


def test_constant_metric_is_named_and_not_plotted(tmp_path):
    out = tmp_path / "out"
    data = report(sweep(tmp_path / "runs", {1: LOW, 4: MID}), out)
    assert data["constant_metrics"] == {"bench/chance": 0.25, "easy/accuracy": 1.0}
    assert all("easy/accuracy" not in g["vs_baseline"] for g in data["groups"])
    assert not list((out / "figures").glob("easy_accuracy*"))
    assert list((out / "figures").glob("bench_accuracy*"))
    md = (out / "report.md").read_text()
    assert "constant in every run (not plotted, not tested): easy/accuracy = 1.0" in md


def test_paths_are_relative_to_the_report(tmp_path):
    runs = sweep(tmp_path / "runs", {1: LOW, 4: MID})
    (runs / "z099_hd1_s0" / "checkpoints").mkdir()
    (runs / "z099_hd1_s0" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    out = tmp_path / "elsewhere" / "report"
    data = report(runs, out)
    assert data["root"] == "../../runs"
    paths = [r["dir"] for r in data["runs"]] + [p for g in data["groups"] for p in g["runs"]]
    assert all(not p.startswith("/") and (out / p).resolve().is_dir() for p in paths)
    info = next(r["info"] for r in data["runs"] if r["dir"].endswith("z099_hd1_s0"))
    assert (out / info["checkpoint"]).resolve().is_file()
    assert str(tmp_path) not in (out / "report.md").read_text()


def test_choices_keep_sweep_order_and_baseline_can_be_named(tmp_path):
    root = tmp_path / "runs"
    for i, (conn, values) in enumerate((("token_merge", MID), ("resampler", LOW))):
        for seed, acc in enumerate(values):
            make_run(root, f"{i}_{seed}", cfg(seed, 4, connector={"name": conn}),
                     {"bench/accuracy": acc})  # fmt: skip
    data = report(root, tmp_path / "out")
    assert [g["key"]["connector.name"] for g in data["groups"]] == ["token_merge", "resampler"]
    assert data["groups"][1]["vs_baseline"]["bench/accuracy"]["verdict"] == "lower"
    data = report(root, tmp_path / "out2", baseline="connector.name=resampler")
    assert data["groups"][1]["is_baseline"]
    assert data["groups"][0]["vs_baseline"]["bench/accuracy"]["verdict"] == "higher"
    with pytest.raises(FileNotFoundError, match="has no value nope"):
        report(root, tmp_path / "out3", baseline="connector.name=nope")


def test_baseline_key_compares_within_each_setting_of_the_other_key(tmp_path):
    root = tmp_path / "runs"
    table = {("concat", 500): MID, ("resampler", 500): LOW, ("concat", 8000): MID,
             ("resampler", 8000): [v - 0.01 for v in MID]}  # fmt: skip
    for i, ((conn, n), values) in enumerate(table.items()):
        for seed, acc in enumerate(values):
            c = cfg(seed, 4, connector={"name": conn})
            c["data"] = {"num_train": n}
            make_run(root, f"{i}_{seed}", c, {"bench/accuracy": acc})
    data = report(root, tmp_path / "out", baseline="connector.name=concat")
    verdicts = {
        (g["key"]["connector.name"], g["key"]["data.num_train"]): g["vs_baseline"]
        for g in data["groups"]
    }
    assert verdicts[("resampler", 500)]["bench/accuracy"]["verdict"] == "lower"
    assert verdicts[("resampler", 8000)]["bench/accuracy"]["verdict"].startswith("no difference")
    assert verdicts[("concat", 500)] == {} and verdicts[("concat", 8000)] == {}


def test_a_key_that_moves_with_the_arm_is_not_a_stratum(tmp_path):
    """Fixed resolution at 300 steps against dynamic at 900 (equal steps per size): the step
    count belongs to the arm, and the dynamic group is still compared with the fixed one."""
    root = tmp_path / "runs"
    for i, (sizes, steps, values) in enumerate((([40], 300, LOW), ([24, 40, 56], 900, MID))):
        for seed, acc in enumerate(values):
            c = cfg(seed, 4)
            c["resolution"]["sizes"] = sizes
            c["trainer"]["max_steps"] = steps
            make_run(root, f"{i}_{seed}", c, {"bench/accuracy": acc})
    data = report(root, tmp_path / "out")
    assert data["groups"][0]["is_baseline"]
    assert data["groups"][1]["vs_baseline"]["bench/accuracy"]["verdict"] == "higher"
