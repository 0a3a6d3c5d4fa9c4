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
