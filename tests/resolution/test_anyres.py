"""AnyRes against transformers' LLaVA-NeXT (the reference implementation) as an oracle."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image
from transformers import LlavaNextImageProcessor, LlavaNextProcessor
from transformers.image_processing_utils import select_best_resolution as hf_select

from mmfw.data.tokenizer import TokenizerFactory
from mmfw.resolution.anyres import AnyRes, select_best_resolution
from mmfw.resolution.layout import FeatureGrid, count_image_tokens

# [height, width] pairs, as transformers' image_grid_pinpoints (and mmfw's resolution.pinpoints)
DEFAULT = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
# Asymmetric list: catches any (width, height) / (height, width) mix-up.
SKEWED = [[336, 672], [1008, 672], [1344, 336], [672, 1344]]
# Every candidate keeps 0 pixels (int(1 · s) == 0): the tie goes to the least waste, then the
# earliest candidate (1x3000 chose 624 tokens instead of transformers' 600 before the fix).
DEGENERATE = [(1, 3000), (2, 3000), (3000, 1), (3000, 2), (1, 1), (1, 4000), (4000, 3)]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def hf_processor(pinpoints, tmp_path):
    tok = TokenizerFactory(vocab_size=300, min_frequency=1).load_or_build(
        tmp_path / "tok", lambda: ["a b c"] * 5
    )
    image_processor = LlavaNextImageProcessor(
        image_grid_pinpoints=pinpoints,
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )


def random_sizes(n: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    sizes = [(rng.randint(1, 3000), rng.randint(1, 3000)) for _ in range(n - 20)]
    sizes += [(rng.randint(1, 60), rng.randint(500, 4000)) for _ in range(10)]
    sizes += [(rng.randint(500, 4000), rng.randint(1, 60)) for _ in range(10)]
    return sizes + DEGENERATE


@pytest.mark.parametrize("pinpoints", [DEFAULT, SKEWED], ids=["default", "skewed"])
def test_token_counts_equal_llava_next_processor(pinpoints, tmp_path):
    proc = hf_processor(pinpoints, tmp_path)
    strategy = AnyRes(crop_size=336, pinpoints=pinpoints)
    grid = FeatureGrid(patch=14)
    for w, h in random_sizes(3000, seed=len(pinpoints)):
        assert select_best_resolution(w, h, strategy.pinpoints)[::-1] == tuple(
            hf_select((h, w), proc.image_processor.image_grid_pinpoints)
        ), (w, h)
    for w, h in random_sizes(300, seed=len(pinpoints) + 1):
        expected = proc._get_number_of_features(h, w, 336, 336) - 1  # "default": CLS dropped
        assert count_image_tokens(strategy.layout(w, h), grid) == expected, (w, h)


def test_processor_expansion_and_pixels_match(tmp_path):
    """End to end on real images: placeholder count and the views' pixels."""
    proc = hf_processor(DEFAULT, tmp_path)
    strategy = AnyRes(crop_size=336, pinpoints=DEFAULT)
    rng = random.Random(0)
    for w, h in [(500, 300), (300, 700), (1000, 1000), (340, 90), (1500, 400)]:
        img = Image.fromarray(
            torch.randint(
                0,
                256,
                (h, w, 3),
                dtype=torch.uint8,
                generator=torch.Generator().manual_seed(rng.randint(0, 99)),
            ).numpy()
        )
        out = proc(text="<image>", images=img, return_tensors="pt")
        n_hf = int((out["input_ids"] == proc.image_token_id).sum())
        views, layout = strategy(img)
        assert count_image_tokens(layout, FeatureGrid(patch=14)) == n_hf
        hf_pixels = out["pixel_values"][0]
        ours = (views.float() / 255 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(
            CLIP_STD
        ).view(1, 3, 1, 1)
        assert hf_pixels.shape == ours.shape
        # Same geometry (grid, centring, padding, base view) and the same resampling: the views
        # equal transformers' pixel values up to float rounding of the normalisation.
        assert (hf_pixels - ours).abs().max() < 1e-5, (w, h)
