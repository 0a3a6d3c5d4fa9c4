"""The magnifier generator: deterministic, LLaVA-JSON + TSV output, cached by parameters."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from mmfw.data.formats.llava_json import parse_record
from mmfw.data.formats.vlmeval_tsv import read_mc_tsv
from mmfw.data.synthetic.magnifier import COLOURS, MagnifierGenerator
from mmfw.data.synthetic.source import SyntheticSource, dataset_dir, ensure_generated

SMALL = {"num_train": 12, "num_val": 4, "num_test": 8}


def digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_same_parameters_same_bytes(tmp_path):
    MagnifierGenerator(**SMALL, seed=3).generate(tmp_path / "a")
    MagnifierGenerator(**SMALL, seed=3).generate(tmp_path / "b")
    MagnifierGenerator(**SMALL, seed=4).generate(tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_files_are_valid_llava_json_and_mc_tsv(tmp_path):
    gen = MagnifierGenerator(**SMALL, mc_fraction=0.5)
    gen.generate(tmp_path)
    for split, n in (("train", 12), ("val", 4), ("test", 8)):
        raws = json.loads((tmp_path / f"{split}.json").read_text())
        assert len(raws) == n
        for raw in raws:
            rec = parse_record(raw)
            assert (tmp_path / rec.images[0]).exists()
    qs = read_mc_tsv(tmp_path / "test_mc.tsv")
    assert len(qs) == 8 and all(set(q.options) == set("ABCD") for q in qs)
    assert all(q.options[q.answer] in gen.answers for q in qs)
    with (tmp_path / "test_mc.tsv").open() as f:
        assert csv.DictReader(f, delimiter="\t").fieldnames[:2] == ["index", "question"]


def test_the_object_has_the_answered_colour(tmp_path):
    gen = MagnifierGenerator(**SMALL, clutter=0, noise=0.0, object_size=5)
    gen.generate(tmp_path)
    for q in read_mc_tsv(tmp_path / "test_mc.tsv"):
        arr = np.asarray(q.images[0].convert("RGB")).reshape(-1, 3)
        colours = {tuple(c) for c in arr} - {(128, 128, 128)}
        assert colours == {COLOURS[q.options[q.answer]]}
        assert sum((arr != 128).any(axis=1)) == 25  # a 5x5 square


def test_fixed_option_order(tmp_path):
    gen = MagnifierGenerator(**SMALL, shuffle_options=False)
    gen.generate(tmp_path)
    for q in read_mc_tsv(tmp_path / "test_mc.tsv"):
        assert list(q.options.values()) == gen.answers


def test_pattern_textures_share_one_mean_colour(tmp_path):
    gen = MagnifierGenerator(
        **SMALL, attribute="pattern", canvas=64, object_size=8, clutter=0, noise=0.0
    )
    gen.generate(tmp_path)
    img = Image.open(tmp_path / "images/test/000000.png")
    assert img.size == (64, 64)


def test_bad_parameters_name_the_key():
    with pytest.raises(ValueError, match="synthetic.colours"):
        MagnifierGenerator(colours=["red", "mauve"])
    with pytest.raises(ValueError, match="synthetic.num_options"):
        MagnifierGenerator(colours=["red", "blue"], num_options=4)


def test_source_generates_once_into_the_cache(tmp_path):
    gen = MagnifierGenerator(**SMALL)
    src = SyntheticSource(generator=gen, split="val", cache_dir=str(tmp_path))
    assert not dataset_dir(gen, tmp_path).exists()
    assert len(src.records()) == 4
    stamp = (dataset_dir(gen, tmp_path) / "meta.json").stat().st_mtime_ns
    assert ensure_generated(MagnifierGenerator(**SMALL), tmp_path) == dataset_dir(gen, tmp_path)
    assert (dataset_dir(gen, tmp_path) / "meta.json").stat().st_mtime_ns == stamp
    assert dataset_dir(MagnifierGenerator(**{**SMALL, "object_size": 3}), tmp_path) != dataset_dir(
        gen, tmp_path
    )


def test_sizes_give_varied_aspect_ratios(tmp_path):
    MagnifierGenerator(**SMALL, sizes=[[64, 32], [32, 96]], object_size=4).generate(tmp_path)
    seen = {Image.open(p).size for p in (tmp_path / "images").rglob("*.png")}
    assert seen == {(64, 32), (32, 96)}


def test_position_answers_the_quarter_that_holds_the_object(tmp_path):
    gen = MagnifierGenerator(
        **SMALL, attribute="position", sizes=[[64, 32], [96, 64]], clutter=0, noise=0.0
    )
    gen.generate(tmp_path)
    records = json.loads((tmp_path / "test_open.json").read_text())
    assert len(records) == 8
    for raw in records:
        pixels = np.asarray(Image.open(tmp_path / raw["image"])).astype(int)
        ys, xs = np.nonzero(np.abs(pixels - 128).sum(-1) > 0)
        h, w = pixels.shape[:2]
        where = (
            ("bottom" if ys.mean() >= h / 2 else "top")
            + " "
            + ("right" if xs.mean() >= w / 2 else "left")
        )
        assert raw["conversations"][1]["value"] == where
        assert (ys >= h / 2).all() == (ys.mean() >= h / 2)  # wholly inside its quarter


def test_quarter_colour_asks_the_colour_in_the_named_quarter(tmp_path):
    gen = MagnifierGenerator(**SMALL, attribute="quarter_colour", clutter=0, noise=0.0)
    gen.generate(tmp_path)
    for raw in json.loads((tmp_path / "test_open.json").read_text()):
        pixels = np.asarray(Image.open(tmp_path / raw["image"])).astype(int)
        question, answer = (turn["value"] for turn in raw["conversations"])
        where = next(q for q in ("top left", "top right", "bottom left", "bottom right")
                     if f"in the {q} quarter" in question)  # fmt: skip
        h, w = pixels.shape[:2]
        rows = slice(h // 2, h) if where.startswith("bottom") else slice(0, h // 2)
        cols = slice(w // 2, w) if where.endswith("right") else slice(0, w // 2)
        quarter = pixels[rows, cols].reshape(-1, 3)
        drawn = quarter[np.abs(quarter - 128).sum(-1) > 0]
        assert len(drawn) and (drawn == COLOURS[answer]).all()  # one square, the answer's colour


def test_aspect_answers_the_shape_of_the_whole_image(tmp_path):
    sizes = [[96, 32], [64, 32], [64, 64], [32, 64], [32, 96], [40, 36]]
    gen = MagnifierGenerator(num_train=12, num_val=4, num_test=40, attribute="aspect",
                             sizes=sizes, num_options=5)  # fmt: skip
    assert gen.answers == ["very wide", "wide", "square", "tall", "very tall"]
    gen.generate(tmp_path)
    expected = {(96, 32): "very wide", (64, 32): "wide", (64, 64): "square", (40, 36): "square",
                (32, 64): "tall", (32, 96): "very tall"}  # fmt: skip
    records = json.loads((tmp_path / "test_open.json").read_text())
    for raw in records:
        size = Image.open(tmp_path / raw["image"]).size
        assert raw["conversations"][1]["value"] == expected[size]
    assert len({r["conversations"][1]["value"] for r in records}) == 5
    # Only the classes the sizes hold are answers; one class is no question.
    assert MagnifierGenerator(attribute="aspect", sizes=[[64, 32], [32, 64]],
                              num_options=2).answers == ["wide", "tall"]  # fmt: skip
    with pytest.raises(ValueError, match="two aspect classes"):
        MagnifierGenerator(attribute="aspect", sizes=[[64, 32], [96, 48]])


def test_long_answers_and_the_format_prompt(tmp_path):
    prompt = "Answer the question using a single word or phrase."
    gen = MagnifierGenerator(
        num_train=200, num_val=2, num_test=4, mc_fraction=0.0, long_answer_fraction=0.5,
        format_prompt=prompt,
    )  # fmt: skip
    gen.generate(tmp_path)
    turns = [r["conversations"] for r in json.loads((tmp_path / "train.json").read_text())]
    long = [t for t in turns if t[1]["value"].startswith("The small object")]
    short = [t for t in turns if t[1]["value"] in COLOURS]
    assert len(long) + len(short) == 200 and 70 < len(long) < 130
    assert all(t[0]["value"].endswith(prompt) for t in short)
    assert not any(prompt in t[0]["value"] for t in long)
    # the open test questions carry no prompt: the benchmark adds its own
    opens = json.loads((tmp_path / "test_open.json").read_text())
    assert all(r["conversations"][0]["value"].endswith("?") for r in opens)


def test_version_is_part_of_the_cache_key(tmp_path):
    gen = MagnifierGenerator(**SMALL)
    first = dataset_dir(gen, tmp_path)
    gen.VERSION = 99
    assert dataset_dir(gen, tmp_path) != first


def test_distractor_samples_point_at_their_own_image(tmp_path):
    gen = MagnifierGenerator(
        num_train=60, num_val=2, num_test=2, clutter=0, noise=0.0, mc_fraction=0.0,
        distractor_fraction=0.5, max_distractors=3,
    )  # fmt: skip
    gen.generate(tmp_path)
    multi = 0
    for raw in json.loads((tmp_path / "train.json").read_text()):
        record = parse_record(raw)
        if len(record.images) == 1:
            continue
        multi += 1
        text = record.turns[0].text
        assert text.count("<image>") == len(record.images) <= 4
        target = int(text.split("In Image ")[1].split(",")[0])
        own = record.images[target - 1]
        assert own == f"images/train/{raw['id'].split('-')[1]}.png"
        pixels = np.asarray(Image.open(tmp_path / own)).reshape(-1, 3)
        assert COLOURS[record.turns[1].text] in {tuple(c) for c in pixels}
    assert 15 < multi < 45
