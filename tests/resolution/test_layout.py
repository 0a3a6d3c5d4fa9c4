"""The token-accounting function on hand-built layouts."""

from __future__ import annotations

from mmfw.resolution.layout import (
    FeatureGrid,
    ImageLayout,
    Separator,
    TokenMap,
    count_image_tokens,
    unpadded_hw,
)


def test_single_view_count_is_the_patch_grid():
    layout = ImageLayout(
        image_size=(50, 30), view_hw=(336, 336), num_views=1, parts=[TokenMap([0])]
    )
    assert count_image_tokens(layout, FeatureGrid(patch=14)) == 576


def test_stitched_map_with_newline_and_separator():
    # IXC HD-9 shape: global 12x12 + newline, sep, local 2x3 grid of 12x12 + newline per row
    layout = ImageLayout(
        image_size=(1000, 600),
        view_hw=(336, 336),
        num_views=7,
        parts=[
            TokenMap([0], newline=True),
            Separator(),
            TokenMap([1, 2, 3, 4, 5, 6], rows=2, cols=3, newline=True),
        ],
    )
    grid = FeatureGrid(patch=14, merge=2)
    assert count_image_tokens(layout, grid) == 144 * 7 + 1 + 12 * 3


def test_fixed_connector_grid():
    layout = ImageLayout(
        image_size=(10, 10), view_hw=(336, 336), num_views=1, parts=[TokenMap([0])]
    )
    assert count_image_tokens(layout, FeatureGrid(patch=14, fixed=(12, 12))) == 144


def test_unpad_removes_padding_rows_of_a_wide_image():
    # a 2:1 image in a square map of 24x24 features: half the rows are padding
    assert unpadded_hw(24, 24, (200, 100)) == (12, 24)
    assert unpadded_hw(24, 24, (100, 200)) == (24, 12)
    assert unpadded_hw(24, 48, (200, 100)) == (24, 48)
