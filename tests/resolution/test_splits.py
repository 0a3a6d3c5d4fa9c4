"""MM1.5 static/dynamic splitting and mPLUG-Owl3 adaptive crop."""

from __future__ import annotations

import random

import pytest
import torch

from mmfw.resolution.adaptive_crop import AdaptiveCrop
from mmfw.resolution.dynamic_split import DynamicSplit, candidate_grids, choose_grid
from mmfw.resolution.layout import FeatureGrid, TokenMap, count_image_tokens
from mmfw.resolution.static_split import StaticSplit

C_ABSTRACTOR = FeatureGrid(patch=14, fixed=(12, 12))  # 144 tokens per view


def test_static_split_is_720_tokens_with_overview_last():
    strategy = StaticSplit(size=672, grid=[2, 2])
    layout = strategy.layout(1000, 700)
    assert layout.num_views == 5 and count_image_tokens(layout, C_ABSTRACTOR) == 720
    pixels = torch.zeros(3, 40, 40, dtype=torch.uint8)
    pixels[:, :20, :20] = 255  # top-left quarter white
    views, _ = StaticSplit(size=16, grid=[2, 2])(pixels)
    assert views[0].float().mean() > 250 and views[1].float().mean() < 5  # sub-images row-major
    assert 50 < views[4].float().mean() < 80  # the overview (a quarter white) comes last


def test_dynamic_split_rule_properties():
    grids = candidate_grids(4, 9)
    assert all(4 <= r * c <= 9 for r, c in grids) and (1, 4) in grids and (3, 3) in grids

    def padding(grid, w, h):
        scale = min(grid[0] * 672 / h, grid[1] * 672 / w)
        return grid[0] * grid[1] * 672 * 672 - h * w * scale**2

    rng = random.Random(0)
    for _ in range(300):
        w, h = rng.randint(1, 3000), rng.randint(1, 3000)
        r, c = choose_grid(w, h, 672, grids)
        fits = [(gr, gc) for gr, gc in grids if gr * 672 >= h and gc * 672 >= w]
        if fits:
            # Some grid holds the image without downscaling: the chosen one does, least padding.
            assert r * 672 >= h and c * 672 >= w
            assert padding((r, c), w, h) <= min(padding(g, w, h) for g in fits) + 1e-6
        else:
            # Otherwise the one that keeps the most resolution.
            best = max(min(gr * 672 / h, gc * 672 / w) for gr, gc in grids)
            assert min(r * 672 / h, c * 672 / w) == pytest.approx(best)


def test_dynamic_split_layout_overview_and_multi_image():
    strategy = DynamicSplit(size=672, min_crops=4, max_crops=9)
    layout = strategy.layout(2000, 1300)
    rows, cols = layout.grid
    assert layout.num_views == rows * cols + 1 and count_image_tokens(
        layout, C_ABSTRACTOR
    ) == 144 * (rows * cols + 1)
    three = strategy.layout(2000, 1300, images_in_sample=3)
    assert three.num_views == 1 and three.grid == (1, 1)
    one = DynamicSplit(size=32, min_crops=1, max_crops=4).layout(20, 20)
    assert one.grid == (1, 1) and one.num_views == 1  # no overview for a 1x1 grid


@pytest.mark.parametrize(
    ("size", "grid"),
    # (width, height) → (rows, cols) as the released mPLUG-Owl3 processor chooses (S=384, grid_squ_6)
    [
        ((500, 500), (2, 2)),
        ((1000, 500), (2, 3)),
        ((500, 1000), (3, 2)),
        ((1920, 1080), (2, 3)),
        ((300, 3000), (4, 1)),
        ((384, 1152), (3, 1)),
    ],
)
def test_adaptive_crop_matches_released_choices(size, grid):
    layout = AdaptiveCrop(size=384).layout(*size)
    rows, cols = grid
    assert layout.grid == grid and layout.num_views == rows * cols + 1
    assert all(isinstance(p, TokenMap) and len(p.views) == 1 for p in layout.parts)
    assert count_image_tokens(layout, FeatureGrid(patch=14)) == 729 * (rows * cols + 1)


def test_adaptive_crop_global_last_and_no_crop_for_multi_image():
    pixels = torch.zeros(3, 64, 64, dtype=torch.uint8)
    pixels[:, :32, :] = 255  # top half white
    strategy = AdaptiveCrop(size=16)
    views, layout = strategy(pixels)
    assert layout.grid == (2, 2)
    assert views[0].float().mean() > 250 and views[3].float().mean() < 5
    assert 100 < views[-1].float().mean() < 155  # global: half white
    assert strategy.layout(64, 64, images_in_sample=2).num_views == 1
