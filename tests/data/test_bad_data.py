"""Every kind of bad record is skipped and counted by reason in a real training run (one
epoch: the counts are records), or raises in strict mode naming file, record id and reason;
16-bit, CMYK, palette and alpha images are converted and used."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

import mmfw
from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.sources import JsonSource
from mmfw.data.synthetic.source import ensure_generated
from mmfw.training.run import train
from tests.conftest import SMALL_TASK
from tests.helpers import tiny_components


def qa(image_text="<image>\nWhat colour is the small object?", answer="red"):
    return [{"from": "human", "value": image_text}, {"from": "gpt", "value": answer}]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_data")
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK])
    synth = ensure_generated(instantiate(cfg.synthetic), str(root / "cache"))
    good = json.loads((synth / "train.json").read_text())[:9]
    for r in good:
        r["image"] = str(synth / r["image"])
    img = root / "img"
    img.mkdir()
    base = Image.open(synth / good[0]["image"]).convert("RGB")
    Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257).save(img / "gray16.png")
    base.convert("CMYK").save(img / "cmyk.jpg")
    base.convert("P").save(img / "palette.png")
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(img / "alpha.png")
    png = (synth / good[0]["image"]).read_bytes()
    (img / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (img / "truncated.png").write_bytes(png[: len(png) // 2])
    (img / "empty.png").write_bytes(b"")
    (img / "text.jpg").write_text("not an image")
    (img / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500)
    converted = [{"id": f"conv-{n}", "image": str(img / n), "conversations": qa()} for n in
                 ("gray16.png", "cmyk.jpg", "palette.png", "alpha.png")]  # fmt: skip
    bad = {
        "missing_image": {"id": "gone", "image": str(img / "nope.png"), "conversations": qa()},
        "bad_image": [
            {"id": f"bad-{n}", "image": str(img / n), "conversations": qa()}
            for n in ("corrupt.png", "truncated.png", "empty.png", "text.jpg")
        ],  # fmt: skip
        "bad_video": {
            "id": "video",
            "video": str(img / "broken.mp4"),
            "conversations": qa("What happens?"),
        },
        "not_an_object": "just a string",
        "no_conversations": {"id": "empty", "conversations": []},
        "bad_role": {
            "id": "role",
            "conversations": [{"from": "narrator", "value": "x"}, {"from": "gpt", "value": "y"}],
        },
        "placeholder_mismatch": {
            "id": "ph",
            "image": str(img / "gray16.png"),
            "conversations": qa("<image> <image> two?"),
        },  # fmt: skip
        "too_long": {"id": "long", "conversations": qa("Tell me everything.", "word " * 400)},
    }
    records = [*good, *converted]
    for rec in bad.values():
        records += rec if isinstance(rec, list) else [rec]
    path = root / "data.json"
    path.write_text(json.dumps(records))
    assert len(records) == 24
    expected = {k: (len(v) if isinstance(v, list) else 1) for k, v in bad.items()}
    return path, bad, expected


def test_each_bad_case_is_skipped_and_counted_in_a_real_run(dataset, tmp_path):
    path, _, expected = dataset
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            "data=llava_json",
            f"data.sources.main.path={path}",
            "data.num_workers=2",
            "data.batch_size=8",
            "data.max_length=256",
            "logger=csv",
            "trainer.max_steps=3",
            "evaluate.at_end=false",
            "trainer.enable_progress_bar=false",
        ]  # fmt: skip
    )
    metrics = train(cfg, tmp_path / "run")  # 3 steps x 8 = one epoch of the 24 records
    assert metrics["data/skipped"] == expected
    for reason, n in expected.items():
        assert metrics[f"data/skipped/{reason}"] == n
    # 13 usable records (4 of them converted images) were trained on.
    assert metrics["train/samples_per_s"] > 0


@pytest.mark.parametrize(
    "reason",
    [
        "missing_image",
        "bad_image",
        "bad_video",
        "not_an_object",
        "no_conversations",
        "bad_role",
        "placeholder_mismatch",
        "too_long",
    ],  # fmt: skip
)
def test_strict_mode_raises_naming_file_record_and_reason(dataset, tmp_path, reason):
    path, bad, _ = dataset
    rec = bad[reason][0] if isinstance(bad[reason], list) else bad[reason]
    one = tmp_path / "one.json"
    one.write_text(json.dumps([rec]))
    _, parts = tiny_components(tmp_path, "data.max_length=256")
    parts.processor.max_length = 256
    ds = ConversationDataset([JsonSource(path=str(one))], strict=True)
    collate = TrainingCollator(parts.processor, 0, strict=True)
    with pytest.raises(ValueError) as err:
        collate([ds[0]])
    msg = str(err.value)
    assert "one.json: record 0" in msg and f"[{reason}]" in msg and "data.strict=false" in msg
    rid = rec.get("id") if isinstance(rec, dict) else None
    assert f"(id={rid!r})" in msg
