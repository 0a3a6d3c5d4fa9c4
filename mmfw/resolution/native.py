"""Fuyu's native resolution: no fixed size, the image is cut straight into patches."""

from __future__ import annotations

import math

import torch

from mmfw.resolution.base import ResolutionStrategy, check_fill, interpolation_mode, resize
from mmfw.resolution.layout import ImageLayout, TokenMap


def capped_size(width: int, height: int, max_w: int, max_h: int) -> tuple[int, int]:
    """Fuyu's resize: downscale only (never up) to fit inside ``max``; int() rounding."""
    if width <= max_w and height <= max_h:
        return width, height
    scale = min(max_h / height, max_w / width)
    return max(1, int(width * scale)), max(1, int(height * scale))


class NativeResolution(ResolutionStrategy):
    """One view: the image at its own size (downscaled only above ``max_size``), padded at the
    bottom/right to a multiple of ``patch_size``; its patch tokens come in raster order with a
    newline after every row of patches (Fuyu's ``|NEWLINE|``).

    Yaml keys:
      patch_size: the encoder's patch side (30 for Fuyu); views are padded to multiples of it.
      max_size: [width, height] cap (Fuyu: [1920, 1080]).
      newline: a newline embedding after every patch row.
      fill: RGB of the padding (HF Fuyu pads with value 1 before rescaling: near black).
      interpolation: bilinear (Fuyu) | bicubic | nearest.
    """

    def __init__(
        self,
        *,
        patch_size: int = 30,
        max_size: list[int] | tuple[int, int] = (1920, 1080),
        newline: bool = True,
        fill: list[int] | tuple[int, int, int] = (0, 0, 0),
        interpolation: str = "bilinear",
    ) -> None:
        if len(max_size) != 2:
            raise ValueError(f"resolution.max_size={list(max_size)} must be [width, height]")
        self.patch_size = int(patch_size)
        self.max_size = (int(max_size[0]), int(max_size[1]))
        self.newline = bool(newline)
        self.fill = check_fill(fill, "resolution.fill")
        self.mode = interpolation_mode(interpolation)
        self.needs_newline = self.newline

    def content_size(self, width: int, height: int, **options) -> tuple[int, int]:
        """(width, height) of the image inside the view."""
        return capped_size(width, height, *self.max_size)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        w, h = self.content_size(width, height, **options)
        p = self.patch_size
        rows, cols = math.ceil(h / p), math.ceil(w / p)
        return ImageLayout(
            image_size=(width, height),
            view_hw=(rows * p, cols * p),
            num_views=1,
            parts=[TokenMap([0], newline=self.newline)],
            grid=(rows, cols),
        )

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        w, h = self.content_size(*layout.image_size, **options)
        view = torch.empty((3, *layout.view_hw), dtype=torch.uint8)
        view[:] = torch.tensor(self.fill, dtype=torch.uint8).view(3, 1, 1)
        view[:, :h, :w] = resize(pixels, (h, w), self.mode)
        return view.unsqueeze(0)
