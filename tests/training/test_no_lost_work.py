"""A run that dies on bad data (strict mode) leaves its progress in last.ckpt."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate

import mmfw
from mmfw.data.synthetic.source import ensure_generated
from mmfw.training.run import train
from tests.conftest import SMALL_TASK


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
