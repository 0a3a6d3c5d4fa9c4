"""A run that dies on bad data (strict mode) leaves its progress in last.ckpt."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate

import mmfw
from mmfw.data.synthetic.source import ensure_generated
from mmfw.training.run import train
from tests.conftest import SMALL_TASK, run_cli


def test_strict_error_names_the_record_and_keeps_a_checkpoint(tmp_path):
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK])
    root = ensure_generated(instantiate(cfg.synthetic), str(tmp_path / "cache"))
    records = json.loads((root / "train.json").read_text())
    records.append(
        {
            "id": "broken-one",
            "image": "images/train/nope.png",
            "conversations": records[0]["conversations"],
        }
    )
    (tmp_path / "data.json").write_text(json.dumps(records))
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            "data=llava_json",
            f"data.sources.main.path={tmp_path / 'data.json'}",
            f"data.sources.main.image_root={root}",
            "data.strict=true",
            "data.batch_size=4",
            "data.num_workers=0",
            "logger=csv",
            "trainer.max_steps=100",
            "trainer.enable_progress_bar=false",
            "evaluate.at_end=false",
        ]
    )
    with pytest.raises(
        ValueError, match=r"data\.json: record 96 \(id='broken-one'\).*data\.strict=false"
    ):
        train(cfg, tmp_path / "run")
    ckpt = torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert ckpt["global_step"] > 0


def _llava_file(tmp_path, root, broken_every: int = 0, missing_root: bool = False):
    """The synthetic task's training records as a LLaVA JSON, some with a missing image."""
    records = json.loads((root / "train.json").read_text())
    for i, r in enumerate(records):
        if broken_every and i % broken_every == 0:
            r["image"] = f"images/train/missing-{i}.png"
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records))
    return path


def _data_args(tmp_path, **kw):
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK])
    root = ensure_generated(instantiate(cfg.synthetic), str(tmp_path / "cache"))
    path = _llava_file(tmp_path, root, **kw)
    return root, [
        "data=llava_json",
        f"data.sources.main.path={path}",
        f"data.sources.main.image_root={root}",
    ]


def test_a_source_of_missing_images_stops_before_step_1(tmp_path):
    root, args = _data_args(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    args[-1] = f"data.sources.main.image_root={empty}"
    run_dir = tmp_path / "run"
    out = run_cli("mmfw-train", "experiment=tiny_llava", *SMALL_TASK, *args, "logger=csv",
                  f"hydra.run.dir={run_dir}", check=False)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"data.sources.main ({tmp_path / 'data.json'})" in out.stderr
    assert f"data.sources.main.image_root='{empty}'" in out.stderr
    assert "32 of 32 image records missing" in out.stderr
    assert not (run_dir / "checkpoints").exists()  # nothing trained
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and "missing_image" in record["error"]


def test_too_many_skipped_records_warn_loudly_and_run_json_keeps_it(tmp_path):
    _, args = _data_args(tmp_path, broken_every=5)  # 20% of the records lack their image
    run_dir = tmp_path / "run"
    out = run_cli("mmfw-train", "experiment=tiny_llava", *SMALL_TASK, *args, "logger=csv",
                  "data.batch_size=8", "trainer.max_steps=12", "evaluate.at_end=false",
                  "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert "> data.max_skipped_fraction=0.05): missing_image" in out.stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and "missing_image" in record["data_warning"]
    assert (
        "data.json:" in record["data_warning"] and "(id=" in record["data_warning"]
    )  # an example record
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["data/skipped"]["missing_image"] > 0


def test_a_failed_run_says_so_in_run_json(tmp_path):
    _, args = _data_args(tmp_path, broken_every=40)
    run_dir = tmp_path / "run"
    out = run_cli("mmfw-train", "experiment=tiny_llava", *SMALL_TASK, *args, "logger=csv", "data.strict=true",
                  "data.batch_size=8", "trainer.max_steps=20", "evaluate.at_end=false",
                  f"hydra.run.dir={run_dir}", check=False)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "data.json: record" in out.stderr and "[missing_image]" in out.stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed"
    assert record["error"].startswith("ValueError:") and "missing_image" in record["error"]
    assert record["ended"] is not None
