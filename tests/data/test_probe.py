"""The datamodule's probe before step 1: a source whose every image record misses its image
(a wrong ``image_root``) stops the run even when text-only records would train; a few missing
images are skipped and counted as before."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from mmfw.data.datamodule import VLDataModule
from mmfw.data.sources import JsonSource
from mmfw.errors import UserError
from tests.helpers import tiny_components


def qa(question: str) -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": "red"}]


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    """A LLaVA json of 4 image records and 3 text-only ones, its images, and a processor."""
    root = tmp_path_factory.mktemp("probe")
    images = root / "images"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.new("RGB", (64, 64), "red").save(images / name)
    records = [
        {"id": f"img-{n}", "image": n, "conversations": qa("<image>\nWhat colour is it?")}
        for n in ("a.png", "b.png", "c.png", "d.png")
    ] + [{"id": f"text-{i}", "conversations": qa(f"Name colour {i}.")} for i in range(3)]
    path = root / "train.json"
    path.write_text(json.dumps(records))
    _, parts = tiny_components(root)
    return path, images, parts.processor


def probe(path, image_root, processor) -> dict:
    data = VLDataModule(
        sources={"main": JsonSource(path=str(path), image_root=str(image_root))}, batch_size=2
    )
    data.attach(processor)
    return data.probe()


def test_every_image_missing_stops_with_the_source_and_image_root_named(llava, tmp_path):
    path, _, processor = llava
    wrong = tmp_path / "wrong_root"
    wrong.mkdir()
    with pytest.raises(UserError) as err:
        probe(path, wrong, processor)
    msg = str(err.value)
    assert f"data.sources.main ({path})" in msg
    assert f"data.sources.main.image_root='{wrong}'" in msg and "missing_image" in msg
    assert "check image_root" in msg
    assert f"4 of 4 image records missing, e.g. {wrong / 'a.png'}" in msg


def test_some_images_missing_are_skipped_and_counted(llava, tmp_path):
    path, images, processor = llava
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (partial / name).write_bytes((images / name).read_bytes())
    report = probe(path, partial, processor)["main"]
    assert report == {"probed": 7, "usable": 6, "skipped": {"missing_image": 1}}
    assert probe(path, images, processor)["main"]["usable"] == 7
