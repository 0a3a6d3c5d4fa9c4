"""InternLM-XComposer2-4KHD dynamic image partition ("HD-H": at most H crops)."""

from __future__ import annotations

import math

import torch

from mmfw.resolution.base import (
    ResolutionStrategy,
    check_fill,
    grid_into,
    interpolation_mode,
    pad_centred,
    resize,
    view_into,
)
from mmfw.resolution.layout import ImageLayout, Separator, TokenMap


def hd_geometry(width: int, height: int, crop: int, max_crops: int) -> tuple[int, int, int, int]:
    """(resized width, resized height, rows, cols) of IXC's HD transform.

    With the long side horizontal (r = long/short): s = the largest integer >= 1 with
    s·ceil(s/r) <= max_crops; the long side becomes crop·s, the short side int(crop·s / r)
    (at least 1), then padded up to a multiple of ``crop``. Only the aspect ratio matters,
    so small images are upscaled.
    """
    tall = width < height
    long_side, short_side = (height, width) if tall else (width, height)
    ratio = long_side / short_side
    s = 1
    while (s + 1) * math.ceil((s + 1) / ratio) <= max_crops:
        s += 1
    new_long = crop * s
    new_short = max(1, int(new_long / ratio))
    n_short = math.ceil(new_short / crop)
    if tall:
        return new_short, new_long, s, n_short
    return new_long, new_short, n_short, s


class DynamicPartition(ResolutionStrategy):
    """IXC2-4KHD's HD-H partition with its global-local token format.

    The image is resized (aspect kept) so that its long side is ``crop_size``·s, padded with
    ``fill`` (white) centred on the short side to a multiple of ``crop_size`` and cut into
    rows × cols crops (rows·cols <= ``max_crops``). The global view is the padded image
    resized to one crop. Tokens: [global map (+ newline per row)] [separator]
    [stitched local map (+ newline per row)], or local first with ``order: local_first``.

    Yaml keys:
      crop_size: side of every crop and of the global view (336 for CLIP-L/14-336).
      max_crops: H of HD-H (9, 16, 25, 55 in the paper).
      global_view: include the global view.
      newline: a learnable newline embedding after every row of each map.
      separator: a learnable separator between the global and local parts (only with a
        global view).
      order: global_first (IXC) | local_first.
      fill: RGB padding colour (IXC: white).
      interpolation: resize of the image before cropping (IXC: bilinear).
      global_interpolation: resize of the padded image to the global view (IXC: bicubic).
      reduced_decode: decode a JPEG at a DCT scale (1/2, 1/4, 1/8) when that still covers the
        resized image (no upscaling); the views then differ from a full decode by a few
        levels. false: always decode at full scale.
    """

    def __init__(
        self,
        *,
        crop_size: int = 336,
        max_crops: int = 9,
        global_view: bool = True,
        newline: bool = True,
        separator: bool = True,
        order: str = "global_first",
        fill: list[int] | tuple[int, int, int] = (255, 255, 255),
        interpolation: str = "bilinear",
        global_interpolation: str = "bicubic",
        reduced_decode: bool = True,
    ) -> None:
        if max_crops < 1:
            raise ValueError(f"resolution.max_crops={max_crops} must be at least 1")
        if order not in ("global_first", "local_first"):
            raise ValueError(f"resolution.order={order!r}: use global_first or local_first")
        self.crop_size = int(crop_size)
        self.max_crops = int(max_crops)
        self.global_view = bool(global_view)
        self.newline = bool(newline)
        self.separator = bool(separator) and self.global_view
        self.order = order
        self.fill = check_fill(fill, "resolution.fill")
        self.mode = interpolation_mode(interpolation)
        self.global_mode = interpolation_mode(
            global_interpolation, "resolution.global_interpolation"
        )
        self.needs_newline = self.newline
        self.needs_separator = self.separator
        self.reduced_decode = bool(reduced_decode)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        _, _, rows, cols = hd_geometry(width, height, self.crop_size, self.max_crops)
        first_local = 1 if self.global_view else 0
        local = TokenMap(
            list(range(first_local, first_local + rows * cols)),
            rows=rows,
            cols=cols,
            newline=self.newline,
        )
        parts: list = [local]
        if self.global_view:
            glob = [TokenMap([0], newline=self.newline)]
            sep = [Separator()] if self.separator else []
            parts = glob + sep + parts if self.order == "global_first" else parts + sep + glob
        return ImageLayout(
            image_size=(width, height),
            view_hw=(self.crop_size, self.crop_size),
            num_views=rows * cols + first_local,
            parts=parts,
            grid=(rows, cols),
        )

    def source_size(self, width: int, height: int) -> tuple[int, int]:
        """The resized image (the global view is taken from it, not from the source)."""
        if not self.reduced_decode:
            return width, height
        new_w, new_h, _, _ = hd_geometry(width, height, self.crop_size, self.max_crops)
        return new_w, new_h

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        width, height = layout.image_size
        new_w, new_h, rows, cols = hd_geometry(width, height, self.crop_size, self.max_crops)
        canvas = pad_centred(
            resize(pixels, (new_h, new_w), self.mode),
            (rows * self.crop_size, cols * self.crop_size),
            self.fill,
        )
        # Preallocated output: every view is written once, by its only CHW copy.
        views = torch.empty(
            (layout.num_views, 3, self.crop_size, self.crop_size), dtype=torch.uint8
        )
        first = 1 if self.global_view else 0
        grid_into(views[first:], canvas, rows, cols)
        if self.global_view:
            size = (self.crop_size, self.crop_size)
            view_into(views[0], resize(canvas, size, self.global_mode))
        return views
