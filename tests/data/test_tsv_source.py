"""A VLMEvalKit TSV (base64 images, hints, nan cells) as a training source."""

from __future__ import annotations

import base64
import csv

from hydra.utils import instantiate

import mmfw
from mmfw.data.formats.llava_json import parse_record
from mmfw.data.synthetic.source import ensure_generated
from mmfw.data.tsv_source import TsvSource
from mmfw.training.run import train
from tests.conftest import SMALL_TASK


def mmbench_style(tmp_path):
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK])
    root = ensure_generated(instantiate(cfg.synthetic), str(tmp_path / "cache"))
    rows = list(csv.DictReader((root / "test_mc.tsv").open(), delimiter="\t"))
    out = tmp_path / "mmbench_style.tsv"
    with out.open("w", newline="") as f:
        cols = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"]
        w = csv.DictWriter(f, fieldnames=cols, delimiter="\t")
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({
                "index": r["index"], "question": r["question"], "hint": "nan" if i % 2 else "Look closely.",
                "A": r["A"], "B": r["B"], "C": r["C"], "D": "nan" if i % 3 == 0 else r["D"],
                "answer": r["answer"] if i % 3 or r["answer"] != "D" else "A", "category": r["category"],
                "image": base64.b64encode((root / r["image_path"]).read_bytes()).decode(),
            })  # fmt: skip
    return out


def test_rows_become_multiple_choice_conversations(tmp_path):
    source = TsvSource(path=str(mmbench_style(tmp_path)))
    first, second = (parse_record(r) for r in source.records()[:2])
    assert first.turns[0].text.startswith("<image>\nLook closely.\nWhat colour")
    assert "\nA. " in first.turns[0].text and "D. " not in first.turns[0].text  # nan option dropped
    assert first.turns[0].text.endswith(
        "Answer with the option's letter from the given choices directly."
    )
    assert first.turns[1].text in "ABCD" and isinstance(first.images[0], bytes)
    assert not second.turns[0].text.split("\n")[1].startswith("nan")  # nan hint dropped


def test_a_tsv_source_trains(tmp_path):
    path = mmbench_style(tmp_path)
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            "data=llava_json",
            "+data.sources.main.prompt_suffix=Answer.",
            "data.sources.main._target_=mmfw.data.tsv_source.TsvSource",
            f"data.sources.main.path={path}",
            "data.strict=true",
            "data.num_workers=0",
            "data.batch_size=4",
            "logger=csv",
            "trainer.max_steps=2",
            "evaluate.at_end=false",
            "trainer.enable_progress_bar=false",
        ]  # fmt: skip
    )
    metrics = train(cfg, tmp_path / "run")
    assert metrics["step"] == 2 and metrics["data/skipped"] == {}
