"""Record → tokens: label masking, placeholder expansion, truncation, bad records in a dataset."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from mmfw.data.collate import PadCollator, TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.formats.llava_json import RecordError, parse_record
from mmfw.data.processor import IGNORE
from mmfw.data.skips import Skipped
from mmfw.data.sources import JsonSource
from tests.helpers import tiny_components


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return tiny_components(tmp_path_factory.mktemp("proc"))[1]


@pytest.fixture()
def folder(tmp_path):
    Image.new("RGB", (80, 50), (0, 200, 0)).save(tmp_path / "img.png")
    return tmp_path


def record(image="img.png", *pairs):
    conv = []
    for q, a in pairs or [("<image>\nWhat colour is it?", "green")]:
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    raw = {"id": "r", "conversations": conv}
    if image:
        raw["image"] = image
    return parse_record(raw)


def test_labels_cover_exactly_the_assistant_tokens(parts, folder):
    rec = record("img.png", ("<image>\nWhat colour is it?", "green"), ("Sure?", "yes green"))
    s = parts.processor.training_sample(rec, folder)
    tok = parts.tokenizer
    targets = [t for t, lab in zip(s.input_ids, s.labels, strict=True) if lab != IGNORE]
    assert tok.decode(targets) == " green</s> yes green</s>"
    assert all(lab in (IGNORE, t) for t, lab in zip(s.input_ids, s.labels, strict=True))
    n_img = s.input_ids.count(parts.model.image_token_id)
    assert n_img == parts.processor.counter(s.layouts[0]) == 64
    assert s.input_ids[0] == tok.bos_token_id


def test_text_only_record_has_no_images(parts, folder):
    s = parts.processor.training_sample(record(None, ("hello", "hi")), folder)
    assert s.images == [] and parts.model.image_token_id not in s.input_ids


def test_too_long_is_skipped_or_cut_at_a_turn_border(parts, folder):
    proc = parts.processor
    old = proc.max_length, proc.truncate
    long = record("img.png", ("<image>\nQ", "short"), ("And?", "word " * 200))
    try:
        proc.max_length = 120  # the image (64 tokens) and the first answer fit, not the second
        with pytest.raises(RecordError, match="data.truncate=true cuts") as err:
            proc.training_sample(long, folder)
        assert err.value.reason == "too_long"
        proc.truncate = True
        s = proc.training_sample(long, folder)
        first = proc.training_sample(record("img.png", ("<image>\nQ", "short")), folder)
        assert s.input_ids == first.input_ids  # cut exactly after the first answer
        proc.max_length = 40  # the image itself would be cut: never
        with pytest.raises(RecordError) as err:
            proc.training_sample(record(), folder)
        assert err.value.reason == "too_long"
    finally:
        proc.max_length, proc.truncate = old


def test_bad_records_are_skipped_and_counted_or_raise_in_strict_mode(parts, folder):
    raws = [
        {
            "id": "ok",
            "image": "img.png",
            "conversations": [
                {"from": "human", "value": "<image>\nQ"},
                {"from": "gpt", "value": "A"},
            ],
        },
        {
            "id": "gone",
            "image": "missing.png",
            "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
        },
        {"id": "broken"},
    ]
    (folder / "data.json").write_text(json.dumps(raws))
    src = JsonSource(path=str(folder / "data.json"))
    ds = ConversationDataset([src])
    items = [ds[i] for i in range(3)]
    assert [type(i).__name__ for i in items] == ["RawItem", "RawItem", "Skipped"]
    pad = parts.tokenizer.pad_token_id
    batch = TrainingCollator(parts.processor, pad)(items)
    assert (
        batch["skipped"] == {"missing_image": 1, "no_conversations": 1}
        and batch["num_samples"] == 1
    )
    with pytest.raises(ValueError) as err:
        TrainingCollator(parts.processor, pad, strict=True)(items[:2])
    msg = str(err.value)
    assert (
        "data.json" in msg and "record 1" in msg and "'gone'" in msg and "data.strict=false" in msg
    )
    with pytest.raises(ValueError, match="record 2"):
        ConversationDataset([src], strict=True)[2]


def test_collator_pads_left_or_right(parts, folder):
    a = parts.processor.training_sample(record(), folder)
    b = parts.processor.training_sample(record(None, ("hi", "yo")), folder)
    for side in ("left", "right"):
        batch = PadCollator(parts.tokenizer.pad_token_id, padding_side=side)([a, b, Skipped("x")])
        mask = batch["attention_mask"]
        assert mask.shape[0] == 2 and mask[0].all()
        row = mask[1]
        assert (row[0] == 0) if side == "left" else (row[-1] == 0)
        assert torch.equal(batch["input_ids"][1][row.bool()], torch.tensor(b.input_ids))
        assert len(batch["images"]) == 1
