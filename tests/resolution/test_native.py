"""Native (Fuyu) and native_dynamic (OtterHD) against transformers' Fuyu processor."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import FuyuImageProcessor, FuyuProcessor

from mmfw.data.tokenizer import TokenizerFactory
from mmfw.resolution.layout import FeatureGrid, count_image_tokens
from mmfw.resolution.native import NativeResolution
from mmfw.resolution.native_dynamic import NativeDynamic


@pytest.fixture(scope="module")
def fuyu(tmp_path_factory):
    tok = TokenizerFactory(vocab_size=300, min_frequency=1).load_or_build(
        tmp_path_factory.mktemp("tok"), lambda: ["a b"] * 4
    )
    tok.add_special_tokens({"additional_special_tokens": ["|SPEAKER|", "|NEWLINE|"]})
    return FuyuProcessor(image_processor=FuyuImageProcessor(), tokenizer=tok)


def test_token_counts_equal_fuyu_processor(fuyu):
    rng = random.Random(0)
    sizes = [(rng.randint(1, 4000), rng.randint(1, 4000)) for _ in range(210)]
    sizes += [(1, 1), (30, 30), (31, 29), (1920, 1080), (1921, 1080), (1, 5000), (5000, 1)]
    strategy = NativeResolution(patch_size=30, max_size=[1920, 1080])
    grid = FeatureGrid(patch=30)
    compared = 0
    for w, h in sizes:
        scale = min(1080 / h, 1920 / w, 1.0)
        if int(h * scale) == 0 or int(w * scale) == 0:
            continue  # transformers fails on these (see the next test)
        n = fuyu._get_num_multimodal_tokens(image_sizes=[[h, w]]).num_image_tokens[0]
        assert count_image_tokens(strategy.layout(w, h), grid) == n, (w, h)
        compared += 1
    assert compared >= 200


def test_extreme_aspect_keeps_one_pixel_where_transformers_fails(fuyu):
    # 10000x1 downscales the 1-px side to int(0.192) = 0: transformers' Fuyu processor raises,
    # mmfw keeps one row of pixels (one patch row: 64 patches + 1 newline).
    with pytest.raises(RuntimeError):
        fuyu._get_num_multimodal_tokens(image_sizes=[[1, 10000]])
    layout = NativeResolution(patch_size=30, max_size=[1920, 1080]).layout(10000, 1)
    assert layout.view_hw == (30, 1920) and count_image_tokens(layout, FeatureGrid(patch=30)) == 65


def test_view_is_content_then_padding_bottom_right():
    strategy = NativeResolution(patch_size=30, max_size=[1920, 1080], fill=[0, 0, 0])
    pixels = torch.full((3, 45, 70), 200, dtype=torch.uint8)
    views, layout = strategy(pixels)
    assert layout.view_hw == (60, 90) and layout.grid == (2, 3)
    assert (
        (views[0, :, :45, :70] == 200).all()
        and (views[0, :, 45:, :] == 0).all()
        and (views[0, :, :, 70:] == 0).all()
    )


def test_large_images_are_downscaled_never_upscaled():
    strategy = NativeResolution(patch_size=30, max_size=[1920, 1080])
    assert strategy.layout(3840, 2160).view_hw == (1080, 1920)
    assert strategy.layout(100, 50).view_hw == (60, 120)


def test_native_dynamic_one_size_per_batch_and_eval_size():
    strategy = NativeDynamic(sizes=[448, 512, 768], eval_size=1024, patch_size=30)
    rng = random.Random(3)
    seen = set()
    for _ in range(30):
        opts = strategy.batch_options(rng)
        seen.add(opts["size"])
        views, layout = strategy(torch.zeros(3, 300, 500, dtype=torch.uint8), **opts)
        side = -(-opts["size"] // 30) * 30
        assert layout.view_hw == (side, side)
    assert seen == {448, 512, 768}
    assert strategy.layout(500, 300).view_hw == (1050, 1050)  # 1024 padded to 35 patches
    assert NativeDynamic(sizes=[448], eval_size=None).layout(500, 300).view_hw == (300, 510)
