"""One square view of a fixed size: plain resize, or LLaVA-1.5's pad-to-square."""

from __future__ import annotations

import torch

from mmfw.resolution.base import (
    ResolutionStrategy,
    check_fill,
    interpolation_mode,
    pad_centred,
    resize,
)
from mmfw.resolution.layout import ImageLayout, TokenMap


class FixedResolution(ResolutionStrategy):
    """Every image becomes one ``size × size`` view.

    Yaml keys:
      size: side of the square view in pixels (e.g. 336 for CLIP-L/14-336).
      aspect: ``resize`` squashes the image to the square; ``pad`` (LLaVA-1.5) first pastes it
        centred on a square canvas of colour ``fill``, so the aspect ratio is kept.
      fill: RGB canvas colour for ``pad``; LLaVA-1.5 uses the CLIP normalisation mean × 255,
        (122, 116, 104).
      interpolation: bicubic | bilinear | nearest.
    """

    def __init__(
        self,
        *,
        size: int,
        aspect: str = "resize",
        fill: tuple[int, int, int] | list[int] = (122, 116, 104),
        interpolation: str = "bicubic",
    ) -> None:
        if aspect not in ("resize", "pad"):
            raise ValueError(f"resolution.aspect={aspect!r}: use 'resize' or 'pad'")
        if size < 1:
            raise ValueError(f"resolution.size={size} must be positive")
        self.size = int(size)
        self.aspect = aspect
        self.fill = check_fill(fill, "resolution.fill")
        self.mode = interpolation_mode(interpolation)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        return ImageLayout(
            image_size=(width, height),
            view_hw=(self.size, self.size),
            num_views=1,
            parts=[TokenMap(views=[0])],
        )

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        if self.aspect == "pad":
            pixels = pad_to_square(pixels, self.fill)
        return resize(pixels, (self.size, self.size), self.mode).unsqueeze(0)


def pad_to_square(pixels: torch.Tensor, fill: tuple[int, int, int]) -> torch.Tensor:
    """Paste a (3, H, W) uint8 image centred on a square canvas of colour ``fill`` (LLaVA-1.5)."""
    side = max(pixels.shape[-2:])
    return pad_centred(pixels, (side, side), fill)
