"""IXC2-4KHD dynamic partition: grid rule, token table, switches, padding."""

from __future__ import annotations

import random

import pytest
import torch

from mmfw.resolution.dynamic_partition import DynamicPartition, hd_geometry
from mmfw.resolution.layout import FeatureGrid, count_image_tokens

MERGE2 = FeatureGrid(patch=14, merge=2)  # CLIP-L/14-336 + 2x2 token merge: 144 tokens per crop


def tokens(strategy, w, h) -> int:
    return count_image_tokens(strategy.layout(w, h), MERGE2)


def ixc_formula(rows: int, cols: int) -> int:
    return 144 * (rows * cols + 1) + 1 + 12 * (rows + 1)


@pytest.mark.parametrize(("h", "most"), [(9, 1561), (16, 2653), (25, 4057), (55, 8737)])
def test_maximum_tokens_per_setting(h, most):
    """SPECS §5: the most tokens HD-9/16/25/55 can produce, over all aspect ratios."""
    strategy = DynamicPartition(max_crops=h)
    seen = 0
    for long_side in range(1, 400):
        for tall in (True, False):
            w, h_ = (336, 336 * long_side) if tall else (336 * long_side, 336)
            seen = max(seen, tokens(strategy, w, h_))
    rng = random.Random(h)
    for _ in range(300):
        seen = max(seen, tokens(strategy, rng.randint(1, 5000), rng.randint(1, 5000)))
    assert seen == most


@pytest.mark.parametrize(
    ("size", "hd", "grid", "n"),
    # (width, height) → (rows, cols) and tokens, as IXC's published HD_transform gives them.
    [
        ((1000, 500), 16, (3, 5), 2353),
        ((500, 1000), 16, (5, 3), 2377),
        ((1920, 1080), 25, (4, 6), 3661),
        ((1080, 1920), 55, (9, 6), 8041),
        ((640, 480), 9, (3, 3), 1489),
    ],
)
def test_reference_examples(size, hd, grid, n):
    strategy = DynamicPartition(max_crops=hd)
    layout = strategy.layout(*size)
    assert layout.grid == grid and tokens(strategy, *size) == n == ixc_formula(*grid)


def test_grid_depends_on_aspect_only_and_respects_the_budget():
    rng = random.Random(1)
    for _ in range(500):
        w, h, hd = rng.randint(1, 6000), rng.randint(1, 6000), rng.choice([9, 16, 25, 55])
        new_w, new_h, rows, cols = hd_geometry(w, h, 336, hd)
        assert rows * cols <= hd
        assert (new_w == 336 * cols) if w >= h else (new_h == 336 * rows)
        assert hd_geometry(w * 3, h * 3, 336, hd)[2:] == (rows, cols)  # same aspect, same grid


def test_switches_change_the_count_by_exact_amounts():
    w, h = 1500, 900
    full = DynamicPartition(max_crops=9)
    rows, cols = full.layout(w, h).grid
    base = tokens(full, w, h)
    assert base == ixc_formula(rows, cols)
    assert tokens(DynamicPartition(max_crops=9, newline=False), w, h) == base - 12 * (rows + 1)
    assert tokens(DynamicPartition(max_crops=9, global_view=False), w, h) == base - 144 - 12 - 1
    assert tokens(DynamicPartition(max_crops=9, separator=False), w, h) == base - 1
    assert tokens(DynamicPartition(max_crops=9, order="local_first"), w, h) == base


def test_views_are_global_then_white_padded_crops():
    strategy = DynamicPartition(crop_size=32, max_crops=3)
    pixels = torch.zeros(3, 40, 120, dtype=torch.uint8)  # 3:1, s=3 → 96x32: 1 row x 3 cols
    views, layout = strategy(pixels)
    assert layout.grid == (1, 3) and views.shape == (4, 3, 32, 32)
    # 120x40 → 96x32 exactly: no padding, all black crops; the global view is black too
    assert views.max() == 0
    strategy = DynamicPartition(crop_size=32, max_crops=2)
    views, layout = strategy(torch.zeros(3, 50, 120, dtype=torch.uint8))
    rows, cols = layout.grid
    assert (rows, cols) == (1, 2)  # ratio 2.4: s=2 → 64 x int(64/2.4)=26 → padded to 32
    crop = views[1]
    assert (crop[:, :3] == 255).all() and (crop[:, -3:] == 255).all()  # white bands top and bottom
    assert (crop[:, 3:29] == 0).all()
