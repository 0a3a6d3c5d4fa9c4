"""For every strategy: the count the data pipeline uses == the embeddings the model produces."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

import mmfw
from mmfw.config import CONF_DIR
from mmfw.resolution.layout import count_image_tokens
from tests.helpers import tiny_components

ALL = sorted(p.stem for p in (Path(CONF_DIR) / "resolution").glob("*.yaml"))
TINY = [n for n in ALL if n.startswith("tiny_") or n.endswith("_64")]


@pytest.mark.parametrize("name", TINY)
def test_count_equals_embeddings_of_the_tiny_model(name, tmp_path):
    torch.manual_seed(0)
    _, parts = tiny_components(tmp_path, f"resolution={name}")
    rng = random.Random(name)
    options = [parts.strategy.batch_options(rng) for _ in range(3)] + [{}]
    for i in range(50):
        w, h = rng.choice([rng.randint(1, 300), rng.randint(1, 40)]), rng.randint(1, 300)
        pixels = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
        views, layout = parts.strategy(pixels, **options[i % len(options)])
        assert views.shape[0] == layout.num_views
        with torch.no_grad():
            embeds = parts.model.encode_images([views], [layout])[0]
        assert (
            embeds.shape[0]
            == count_image_tokens(layout, parts.model.feature_grid)
            == parts.processor.counter(layout)
        )


WEIRD = {
    "1x1": lambda: Image.new("RGB", (1, 1)),
    "1x10000": lambda: Image.new("RGB", (1, 10000)),
    "10000x1": lambda: Image.new("RGB", (10000, 1)),
    "gray": lambda: Image.new("L", (50, 30), 90),
    "rgba": lambda: Image.new("RGBA", (40, 70), (10, 20, 30, 100)),
    "palette": lambda: Image.new("P", (33, 17)),
    "cmyk": lambda: Image.new("CMYK", (60, 20), (0, 50, 100, 0)),
    "16bit": lambda: Image.fromarray(np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50),
}


@pytest.mark.parametrize("name", ALL)
def test_every_strategy_survives_odd_images(name):
    strategy = instantiate(mmfw.compose([f"resolution={name}"]).resolution)
    for kind, make in WEIRD.items():
        img = make()
        views, layout = strategy(img)
        assert views.dtype == torch.uint8 and views.shape[1] == 3, kind
        assert views.shape == (layout.num_views, 3, *layout.view_hw), kind
        assert layout.image_size == img.size, kind
