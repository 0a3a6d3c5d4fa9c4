"""The resolution-strategy interface: PIL image → (views uint8 V×3×h×w, ImageLayout)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from mmfw.resolution.image_io import pil_to_uint8, to_rgb
from mmfw.resolution.layout import ImageLayout

INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


def interpolation_mode(name: str, key: str = "resolution.interpolation") -> InterpolationMode:
    """Validated interpolation mode for a yaml value."""
    if name not in INTERPOLATIONS:
        raise ValueError(f"{key}={name!r} is not one of {sorted(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def resize(pixels: torch.Tensor, hw: tuple[int, int], mode: InterpolationMode) -> torch.Tensor:
    """Resize a uint8 (3, H, W) tensor to ``hw`` with antialiasing (no-op when equal)."""
    if tuple(pixels.shape[-2:]) == tuple(hw):
        return pixels
    return TF.resize(pixels, list(hw), interpolation=mode, antialias=True)


class ResolutionStrategy(ABC):
    """Turns an image into views and a layout; subclasses define the geometry.

    ``layout`` works from the size alone (for planning and token accounting without pixels);
    ``render`` cuts the pixels according to that layout. ``needs_newline`` /
    ``needs_separator`` tell the model to create those learnable embeddings.
    """

    needs_newline: bool = False
    needs_separator: bool = False

    def __call__(
        self, image: Image.Image, *, images_in_sample: int = 1
    ) -> tuple[torch.Tensor, ImageLayout]:
        rgb = to_rgb(image)
        layout = self.layout(rgb.width, rgb.height, images_in_sample=images_in_sample)
        views = self.render(pil_to_uint8(rgb), layout)
        expected = (layout.num_views, 3, *layout.view_hw)
        if tuple(views.shape) != expected:
            raise AssertionError(
                f"{type(self).__name__} rendered {tuple(views.shape)}, layout says {expected}"
            )
        return views, layout

    @abstractmethod
    def layout(self, width: int, height: int, *, images_in_sample: int = 1) -> ImageLayout:
        """The layout for an image of this size, without touching pixels."""

    @abstractmethod
    def render(self, pixels: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        """Views (V, 3, h, w) uint8 of ``pixels`` (3, H, W) uint8, as ``layout`` says."""
