"""The resolution-strategy interface: PIL image → (views uint8 V×3×h×w, ImageLayout)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from mmfw.resolution.image_io import ReducedImage, pil_to_uint8, to_rgb
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
    """Resize a uint8 (..., 3, H, W) tensor to ``hw`` with antialiasing (no-op when equal)."""
    if tuple(pixels.shape[-2:]) == tuple(hw):
        return pixels
    return TF.resize(pixels, [max(1, hw[0]), max(1, hw[1])], interpolation=mode, antialias=True)


def pad_centred(
    pixels: torch.Tensor, hw: tuple[int, int], fill: tuple[int, int, int]
) -> torch.Tensor:
    """Paste a (3, h, w) uint8 image on a ``hw`` canvas of colour ``fill``; the odd pixel of
    padding goes to the bottom/right (as LLaVA-NeXT and IXC do). The canvas is stored
    channels-last (H, W, 3 in memory), like decoded images, so that resizing it is fast."""
    _, h, w = pixels.shape
    if (h, w) == tuple(hw):
        return pixels
    top, left = (hw[0] - h) // 2, (hw[1] - w) // 2
    canvas = np.empty((*hw, 3), dtype=np.uint8)
    # numpy copies (single-threaded memcpy, no intra-op thread pool to wait on); the fill is a
    # whole pre-tiled row, so numpy copies long runs instead of 3-byte pixels (10x faster).
    row = np.tile(np.asarray(fill, dtype=np.uint8), (hw[1], 1))
    canvas[:top] = row
    canvas[top + h :] = row
    canvas[top : top + h, :left] = row[:left]
    canvas[top : top + h, left + w :] = row[left + w :]
    canvas[top : top + h, left : left + w] = hwc(pixels)
    return torch.from_numpy(canvas).permute(2, 0, 1)


def hwc(pixels: torch.Tensor) -> np.ndarray:
    """(H, W, 3) numpy view of a (3, H, W) uint8 tensor, without a copy."""
    return pixels.permute(1, 2, 0).numpy()


def split_grid(pixels: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Cut a (3, rows·s, cols·s') image into rows·cols equal crops, row-major: (n, 3, s, s')."""
    c, h, w = pixels.shape
    sh, sw = h // rows, w // cols
    out = torch.empty((rows * cols, c, sh, sw), dtype=torch.uint8)
    grid_into(out, pixels, rows, cols)
    return out


def grid_into(out: torch.Tensor, pixels: torch.Tensor, rows: int, cols: int) -> None:
    """Write the rows·cols crops of ``pixels`` (3, rows·s, cols·s') into the contiguous
    ``out`` (rows·cols, 3, s, s') in one transposing copy (the only HWC → CHW pass)."""
    _, c, sh, sw = out.shape
    src = hwc(pixels)[: rows * sh, : cols * sw].reshape(rows, sh, cols, sw, c)
    out.numpy().reshape(rows, cols, c, sh, sw)[...] = src.transpose(0, 2, 4, 1, 3)


def view_into(out: torch.Tensor, pixels: torch.Tensor) -> None:
    """Copy a (3, h, w) view of any memory layout into the contiguous slot ``out``."""
    out.numpy()[...] = pixels.numpy()


def check_fill(fill, key: str) -> tuple[int, int, int]:
    """A validated RGB fill colour from a yaml list."""
    if len(fill) != 3 or not all(0 <= int(c) <= 255 for c in fill):
        raise ValueError(f"{key}={list(fill)} must be three 0-255 values (R, G, B)")
    return tuple(int(c) for c in fill)


class ResolutionStrategy(ABC):
    """Turns an image into views and a layout; subclasses define the geometry.

    ``layout`` works from the size alone (for planning and token accounting without pixels);
    ``render`` cuts the pixels according to that layout. ``needs_newline`` /
    ``needs_separator`` tell the model to create those learnable embeddings.
    """

    needs_newline: bool = False
    needs_separator: bool = False

    def __call__(
        self,
        image: Image.Image | torch.Tensor | ReducedImage,
        *,
        images_in_sample: int = 1,
        **options,
    ) -> tuple[torch.Tensor, ImageLayout]:
        """Views and layout of a PIL image (any mode), an RGB uint8 (3, H, W) tensor, or a
        JPEG decoded at reduced scale (layout from its full size, views from its pixels).

        ``options`` are the batch-level choices of :meth:`batch_options` (training only).
        """
        size = None
        if isinstance(image, ReducedImage):
            image, size = image
        pixels = image if isinstance(image, torch.Tensor) else pil_to_uint8(to_rgb(image))
        if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[0] != 3:
            raise ValueError(
                f"expected an RGB uint8 (3, H, W) tensor, got {pixels.dtype} {tuple(pixels.shape)}"
            )
        width, height = size or (pixels.shape[-1], pixels.shape[-2])
        layout = self.layout(width, height, images_in_sample=images_in_sample, **options)
        views = self.render(pixels, layout, **options)
        expected = (layout.num_views, 3, *layout.view_hw)
        if tuple(views.shape) != expected:
            raise AssertionError(
                f"{type(self).__name__} rendered {tuple(views.shape)}, layout says {expected}"
            )
        return views, layout

    def source_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest (width, height) that :meth:`render` resamples a ``width`` x ``height``
        image from without upscaling: a JPEG may be decoded at a DCT scale down to this size
        (see ``image_io.load_image``). Default: the full size (no reduced decode); a strategy
        overrides it only when its render reads the pixels through resizes alone, to sizes
        that do not depend on :meth:`batch_options`."""
        return width, height

    def batch_options(self, rng) -> dict:
        """Choices shared by every image of one training batch (e.g. a random size); the
        training collator passes them to ``__call__``. Evaluation uses none."""
        return {}

    @abstractmethod
    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        """The layout for an image of this size, without touching pixels."""

    @abstractmethod
    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        """Views (V, 3, h, w) uint8 of ``pixels`` (3, H, W) uint8, as ``layout`` says."""
