"""MM1.5 dynamic image splitting: the grid that fits the image best, plus an overview."""

from __future__ import annotations

import torch

from mmfw.resolution.base import (
    ResolutionStrategy,
    check_fill,
    interpolation_mode,
    pad_centred,
    resize,
    split_grid,
)
from mmfw.resolution.layout import ImageLayout, separate_views


def candidate_grids(min_crops: int, max_crops: int) -> list[tuple[int, int]]:
    """All (rows, cols) with min_crops <= rows·cols <= max_crops, fewest crops first."""
    grids = [
        (r, c)
        for r in range(1, max_crops + 1)
        for c in range(1, max_crops + 1)
        if min_crops <= r * c <= max_crops
    ]
    return sorted(grids, key=lambda g: (g[0] * g[1], g))


def choose_grid(
    width: int, height: int, size: int, grids: list[tuple[int, int]]
) -> tuple[int, int]:
    """MM1.5's rule: among the grids that hold the image without downscaling, the one with the
    least padding; if none can, the one that loses the least resolution (largest fit scale).

    The image is fitted into each grid's canvas keeping its aspect; ties go to fewer crops.
    """
    best_key, best = None, grids[0]
    for rows, cols in grids:
        scale = min(rows * size / height, cols * size / width)
        fitted = (height * scale) * (width * scale)
        padding = rows * cols * size * size - fitted
        # Grids that need no downscaling rank first, by padding; the rest by resolution lost.
        key = (0, padding) if scale >= 1 else (1, -scale, padding)
        if best_key is None or key < best_key:
            best_key, best = key, (rows, cols)
    return best


class DynamicSplit(ResolutionStrategy):
    """MM1.5 dynamic splitting: a grid of ``size`` sub-images chosen per image, overview after.

    The image is fitted (aspect kept) into the chosen grid's canvas, padded centred with
    ``fill`` and cut into sub-images, row-major; the overview (the whole image squashed to
    ``size``) follows them and is omitted for a 1×1 grid. Samples with at least
    ``no_split_from_images`` images are not split (one overview view per image). Each view
    contributes its own tokens (no stitching, no newline).

    Exact tie-breaking, rounding and padding placement are not published (MM1.5's code is
    not public): the rule here follows the paper's description and is UNVERIFIED in detail.

    Yaml keys:
      size: side of every view (MM1.5: 672 for a 378-px encoder, position embeddings interpolated).
      min_crops, max_crops: the grid's crop count range (MM1.5: 4..9 training, 4..16 inference).
      overview: add the overview view (after the sub-images).
      no_split_from_images: samples with this many images or more are not split (MM1.5: 3).
      fill: RGB padding colour.
      interpolation: bicubic | bilinear | nearest.
    """

    def __init__(
        self,
        *,
        size: int = 672,
        min_crops: int = 4,
        max_crops: int = 9,
        overview: bool = True,
        no_split_from_images: int = 3,
        fill: list[int] | tuple[int, int, int] = (0, 0, 0),
        interpolation: str = "bicubic",
    ) -> None:
        if not 1 <= min_crops <= max_crops:
            raise ValueError(
                f"resolution.min_crops={min_crops} / max_crops={max_crops}: need 1 <= min <= max"
            )
        self.size = int(size)
        self.grids = candidate_grids(int(min_crops), int(max_crops))
        self.overview = bool(overview)
        self.no_split_from_images = int(no_split_from_images)
        self.fill = check_fill(fill, "resolution.fill")
        self.mode = interpolation_mode(interpolation)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        if images_in_sample >= self.no_split_from_images:
            rows, cols = 1, 1
        else:
            rows, cols = choose_grid(width, height, self.size, self.grids)
        n = rows * cols
        with_overview = self.overview and n > 1
        return separate_views((width, height), self.size, n + int(with_overview), (rows, cols))

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        rows, cols = layout.grid
        overview = resize(pixels, (self.size, self.size), self.mode).unsqueeze(0)
        if rows * cols == 1:
            return overview
        width, height = layout.image_size
        scale = min(rows * self.size / height, cols * self.size / width)
        fitted_hw = (
            min(rows * self.size, round(height * scale)),
            min(cols * self.size, round(width * scale)),
        )
        canvas = pad_centred(
            resize(pixels, fitted_hw, self.mode), (rows * self.size, cols * self.size), self.fill
        )
        subs = split_grid(canvas, rows, cols)
        return torch.cat([subs, overview]) if layout.num_views > rows * cols else subs
