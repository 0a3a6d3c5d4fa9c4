"""mmfw-report --wandb on real offline wandb runs (made here with wandb.init, offline): the
differing key, seed groups, filters, a failed run, a resumed run, run.json beside a run; and
the online mapping of an API run."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import wandb

from mmfw.cli.report import main
from mmfw.report.wandb_filters import matches
from mmfw.report.wandb_log import offline_runs, read_log
from mmfw.report.wandb_run import WandbRun
from mmfw.report.wandb_source import from_public_run, metrics_of, to_run_info
from tests.conftest import run_cli

ACC = {(0.1, 0): 0.50, (0.1, 1): 0.60, (0.2, 0): 0.70, (0.2, 1): 0.80}


def make_run(root: Path, name: str, lr: float, seed: int, *, project: str = "proj",
             exit_code: int = 0, run_id: str | None = None, resume: str | None = None,
             steps: range = range(3)) -> str:  # fmt: skip
    """One offline run as mmfw logs it: the nested resolved config plus its overrides."""
    assert os.environ["WANDB_MODE"] == "offline"
    config = {"seed": seed, "optim": {"lr": lr, "betas": [0.9, 0.99]},
              "trainer": {"max_steps": 30}, "overrides": [f"optim.lr={lr}", f"seed={seed}"]}  # fmt: skip
    run = wandb.init(project=project, dir=root, name=name, config=config, id=run_id,
                     resume=resume, group=f"lr{lr}", tags=[f"lr={lr}", "sweep"])  # fmt: skip
    for s in steps:
        run.log({"train/loss": 2.0 / (s + 1), "trainer/global_step": 10 * s})
    run.log({"bench/accuracy": ACC.get((lr, seed), 0.0), "bench/chance": 0.25,
             "trainer/global_step": 10 * steps[-1]})  # fmt: skip
    run_id, log = run.id, Path(run.dir).parent / f"run-{run.id}.wandb"
    wandb.finish(exit_code=exit_code)
    # wandb's service may still be writing the log when finish() returns (seen: a 7-byte file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        r.WhichOneof("record_type") == "exit" for r in read_log(log)
    ):
        time.sleep(0.1)
    return run_id


@pytest.fixture(scope="module")
def wandb_root(tmp_path_factory) -> Path:
    """lr 0.1 × seeds 0, 1 and lr 0.2 × seeds 0, 1; the last one fails (exit code 1)."""
    root = tmp_path_factory.mktemp("wandb_runs")
    for (lr, seed), _ in ACC.items():
        make_run(root, f"sweep/lr{lr}_s{seed}", lr, seed, exit_code=int((lr, seed) == (0.2, 1)))
    return root


def report(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "report"
    assert main([*args, "--out", str(out)]) == 0
    return json.loads((out / "report.json").read_text())


def test_offline_report_cli(wandb_root, tmp_path):
    out = tmp_path / "out"
    run_cli("mmfw-report", "--wandb", "proj", "--wandb-dir", str(wandb_root), "--out", str(out))
    data = json.loads((out / "report.json").read_text())
    assert data["differing_keys"] == ["optim.lr", "seed"]
    status = {Path(r["dir"]).name: r["status"] for r in data["runs"]}
    assert status == {"lr0.1_s0": "finished", "lr0.1_s1": "finished", "lr0.2_s0": "finished",
                      "lr0.2_s1": "failed"}  # fmt: skip
    failed = next(r for r in data["runs"] if r["status"] == "failed")
    assert "exit code 1" in failed["error"]
    groups = {g["key"]["optim.lr"]: g for g in data["groups"]}
    assert groups[0.1]["n"] == 2 and groups[0.1]["mean"]["bench/accuracy"] == pytest.approx(0.55)
    assert groups[0.2]["n"] == 1 and groups[0.2]["unfinished"] == 1  # the failed run is not counted
    assert groups[0.2]["mean"]["bench/accuracy"] == pytest.approx(0.7)
    run = data["runs"][0]
    assert run["metrics"]["step"] == 20 and run["overrides"] == ["optim.lr=0.1", "seed=0"]
    assert (out / "figures" / "train_loss.png").exists()  # from the logged train/loss history
    assert "from wandb proj (offline" in (out / "report.md").read_text()
    source = json.loads((out / run["dir"] / "source.json").read_text())  # relative to the report
    assert source["group"] == "lr0.1" and "offline-run-" in source["source"]


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({"group": "lr0.1"}, {"lr0.1_s0", "lr0.1_s1"}),
        ({"tags": {"$in": ["lr=0.2"]}}, {"lr0.2_s0", "lr0.2_s1"}),
        ({"config.optim.lr": 0.2, "config.seed": 0}, {"lr0.2_s0"}),
        ({"$or": [{"config.seed": 1}, {"state": "failed"}]}, {"lr0.1_s1", "lr0.2_s1"}),
    ],
)
def test_offline_filters(wandb_root, tmp_path, filters, names):
    data = report(tmp_path, "--wandb", "proj", "--wandb-dir", str(wandb_root),
                  "--filters", json.dumps(filters))  # fmt: skip
    assert {Path(r["dir"]).name for r in data["runs"]} == names
    if filters == {"group": "lr0.1"}:
        assert data["differing_keys"] == ["seed"]


def test_filter_operators_and_errors(wandb_root, tmp_path, capsys):
    runs = {r.name: r for r in offline_runs(wandb_root, "proj", None)}
    r = runs["sweep/lr0.2_s1"]
    assert matches(r, {"summary_metrics.bench/accuracy": {"$gt": 0.75, "$lte": 0.8}})
    assert matches(r, {"display_name": {"$regex": "s1$"}, "tags": "sweep"})
    assert matches(r, {"config.optim.value.lr": 0.2, "config.nope": {"$exists": False}})
    assert not matches(r, {"tags": {"$nin": ["sweep"]}})
    assert not matches(r, {"$nor": [{"group": "lr0.2"}]})
    assert offline_runs(wandb_root, "other", None) == []
    for bad in ('{"config.seed": {"$mod": 2}}', '{"host": "x"}', "[1]", "{not json"):
        code = main(["--wandb", "proj", "--wandb-dir", str(wandb_root), "--filters", bad,
                     "--out", str(tmp_path / "r")])  # fmt: skip
        assert code == 2
    assert "not supported offline" in capsys.readouterr().err
    assert main(["--wandb", "proj", "--wandb-dir", str(wandb_root), "--filters",
                 '{"group": "none"}', "--out", str(tmp_path / "r")]) == 2  # fmt: skip


def test_default_dir_is_wandb_dir(wandb_root, tmp_path, monkeypatch):
    """Offline (tests run with WANDB_MODE=offline), no --wandb-dir: $WANDB_DIR is searched."""
    monkeypatch.setenv("WANDB_DIR", str(wandb_root))
    data = report(tmp_path, "--wandb", "proj", "--filters", '{"group": "lr0.1"}')
    assert len(data["runs"]) == 2


def test_resumed_run_and_run_json(tmp_path):
    """A resumed run (same id, a second offline folder) is one run whose loss history restarts
    at the resumed step; a run.json beside the wandb folder (an mmfw run dir) gives the status."""
    run_id = make_run(tmp_path / "a", "res", 0.1, 0, project="p2", steps=range(3))
    make_run(tmp_path / "a", "res", 0.1, 0, project="p2", run_id=run_id, resume="allow",
             steps=range(1, 4))  # fmt: skip
    (run,) = offline_runs(tmp_path / "a", "p2", None)
    assert [s for s, _ in run.history] == [0, 10, 20, 30] and run.state == "finished"
    # mmfw ends a failed run's wandb run with exit code 0; its run.json says failed.
    rid = make_run(tmp_path / "rundir", "mmfw", 0.1, 0, project="p3")
    (tmp_path / "rundir" / "run.json").write_text(
        json.dumps({"status": "failed", "error": "RuntimeError: boom", "wandb_id": rid})
    )
    (run,) = offline_runs(tmp_path / "rundir", "p3", None)
    info = to_run_info(run, tmp_path / "out" / "x")
    assert (info.status, info.error) == ("failed", "RuntimeError: boom")
    # A torn tail (a run killed mid-write) ends the scan; the records before it still count.
    folder = next((tmp_path / "rundir" / "wandb").glob("offline-run-*"))
    log = next(folder.glob("*.wandb"))
    full = len(list(read_log(log)))
    torn = tmp_path / "torn" / "wandb" / folder.name
    shutil.copytree(folder, torn)
    data = log.read_bytes()
    (torn / log.name).write_bytes(data[: len(data) - 40])
    assert 0 < len(list(read_log(torn / log.name))) < full
    (run,) = offline_runs(tmp_path / "torn", "p3", None)
    assert run.state == "running" and run.config["optim"]["lr"] == 0.1  # no exit record, fresh


class PublicRunStandIn:
    """Only the attributes of ``wandb.apis.public.Run`` the mapping reads (the API cannot be
    reached in tests); the offline tests above use real wandb runs."""

    id, name, entity, project = "ab12", "sweep/3", "team", "proj"
    group, tags, state = "s", ["x"], "crashed"
    config = {"seed": 3, "optim": {"value": {"lr": 0.1}, "desc": None}, "overrides": ["connector=mlp", "seed=3"],
              "connector": {"kind": "mlp"}}  # fmt: skip
    summary = {"_step": 5, "trainer/global_step": 50, "train/loss": 0.5,
               "eval/bench/accuracy": 0.4, "eval/bench/per_category": {"a": 0.2, "b": 0.6},
               "eval/bench/predictions": {"_type": "table-file", "path": "x.json"}}  # fmt: skip

    def history(self, keys, samples, pandas):
        return [{"_step": 0, "trainer/global_step": 10, "train/loss": 1.0},
                {"_step": 1, "trainer/global_step": 20, "train/loss": 0.8}]  # fmt: skip


def test_online_mapping(tmp_path):
    run = from_public_run(PublicRunStandIn())
    assert run.source == "team/proj/ab12" and run.history == [(10, 1.0), (20, 0.8)]
    info = to_run_info(run, tmp_path / "sweep" / "3")
    assert info.status == "interrupted" and "crashed" in info.error
    assert info.config == {"seed": 3, "optim.lr": 0.1, "connector.kind": "mlp"}
    assert info.choices == {"connector": "mlp"} and info.overrides == ["connector=mlp", "seed=3"]
    assert info.metrics["step"] == 50 and info.metrics["bench/accuracy"] == 0.4
    assert info.per_category == {"bench": {"a": 0.2, "b": 0.6}}
    assert not any(k.startswith("_") or "predictions" in k for k in info.metrics)
    assert (tmp_path / "sweep" / "3" / "csv" / "metrics.csv").read_text().startswith("step,")


def test_metrics_prefer_end_of_training_accuracy():
    metrics, _ = metrics_of({"bench/accuracy": 0.9, "eval/bench/accuracy": 0.4})
    assert metrics["bench/accuracy"] == 0.9
    assert matches(WandbRun("i", "n", "p", tags=["a", "b"]), {"tags": {"$in": ["b", "c"]}})
