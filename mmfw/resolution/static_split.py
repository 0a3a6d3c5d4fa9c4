"""MM1.5 static image splitting: a fixed grid of sub-images plus an overview image."""

from __future__ import annotations

import torch

from mmfw.resolution.base import ResolutionStrategy, interpolation_mode, resize, split_grid
from mmfw.resolution.layout import ImageLayout, separate_views


class StaticSplit(ResolutionStrategy):
    """The image is resized to ``grid`` × ``size`` and cut into that many sub-images; an
    overview (the whole image at ``size``) goes after them. Every view is encoded on its own
    and contributes its own tokens (no stitching, no newline).

    MM1.5: 4 sub-images (2×2) + 1 overview, each 672 px for a 378-px encoder (position
    embeddings interpolated), 144 tokens each with the C-Abstractor → 720 tokens.

    Yaml keys:
      size: side of every view in pixels.
      grid: [rows, cols] of sub-images.
      overview: add the overview view.
      overview_first: put the overview before the sub-images (MM1.5 puts it after).
      interpolation: bicubic | bilinear | nearest.
    """

    def __init__(
        self,
        *,
        size: int = 672,
        grid: list[int] | tuple[int, int] = (2, 2),
        overview: bool = True,
        overview_first: bool = False,
        interpolation: str = "bicubic",
    ) -> None:
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"resolution.grid={list(grid)} must be [rows, cols], both >= 1")
        self.size = int(size)
        self.grid = (int(grid[0]), int(grid[1]))
        self.overview = bool(overview)
        self.overview_first = bool(overview_first)
        self.mode = interpolation_mode(interpolation)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        rows, cols = self.grid
        n = rows * cols + (1 if self.overview else 0)
        return separate_views((width, height), self.size, n, (rows, cols))

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        rows, cols = self.grid
        subs = split_grid(
            resize(pixels, (rows * self.size, cols * self.size), self.mode), rows, cols
        )
        if not self.overview:
            return subs
        over = resize(pixels, (self.size, self.size), self.mode).unsqueeze(0)
        return torch.cat([over, subs] if self.overview_first else [subs, over])
