"""Synthetic categories: deterministic, in the real formats, answers that match the pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.data.formats.llava_json import parse_record
from mmfw.data.formats.vlmeval_tsv import read_mc_tsv
from mmfw.data.synthetic.categories import CATEGORIES, CategoryGenerator
from mmfw.data.synthetic.magnifier import COLOURS


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_is_deterministic_and_readable(tmp_path, category):
    gen = CategoryGenerator(category=category, num_train=12, num_val=4, num_test=6, seed=3)
    gen.generate(tmp_path / "a")
    CategoryGenerator(category=category, num_train=12, num_val=4, num_test=6, seed=3).generate(
        tmp_path / "b"
    )
    for name in ("train.json", "test_mc.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    images = sorted((tmp_path / "a" / "images" / "train").glob("*.png"))
    assert (
        images[0].read_bytes()
        == (tmp_path / "b" / images[0].relative_to(tmp_path / "a")).read_bytes()
    )
    for raw in json.loads((tmp_path / "a" / "train.json").read_text()):
        record = parse_record(raw)  # the LLaVA reader accepts every record
        assert len(record.images) == (3 if category == "multi_image" else 1)
    questions = read_mc_tsv(tmp_path / "a" / "test_mc.tsv")
    assert len(questions) == 6
    for q in questions:
        assert q.answer in q.options and len(q.images) == len(record.images)


def _row(img, colour: str) -> float:
    return float(np.nonzero(np.all(np.asarray(img) == COLOURS[colour], axis=-1))[0].mean())


def test_answers_match_the_pixels():
    rng = np.random.default_rng(0)
    counting = CategoryGenerator(category="counting", noise=0)
    for _ in range(20):
        (img,), answer = counting.draw(rng)
        green = np.all(np.asarray(img) == COLOURS["green"], axis=-1).sum()
        assert green == int(answer) * (64 // 6) ** 2
    spatial = CategoryGenerator(category="spatial", noise=0)
    for _ in range(20):
        (img,), answer = spatial.draw(rng)
        assert (_row(img, "red") < _row(img, "blue")) == (answer == "above")
    multi = CategoryGenerator(category="multi_image", noise=0)
    imgs, answer = multi.draw(rng)
    reds = [np.all(np.asarray(i) == COLOURS["red"], axis=-1).any() for i in imgs]
    assert reds.index(True) + 1 == int(answer) and sum(reds) == 1


def test_the_category_mixture_composes_with_alpha():
    cfg = mmfw.compose(["experiment=tiny_categories", "data.sources.math.alpha=1.0"])
    data = instantiate(cfg.data)
    assert set(data.sources) == {"general", *CATEGORIES}
    assert data.sources["multi_image"].kind == "multi_image"
    assert set(cfg.benchmarks) >= set(CATEGORIES)
