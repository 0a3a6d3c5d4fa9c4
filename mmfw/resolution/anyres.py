"""LLaVA-NeXT "anyres": the best grid of crops from a list of pinpoints, plus a base view."""

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
from mmfw.resolution.layout import ImageLayout, TokenMap


def select_best_resolution(
    width: int, height: int, pinpoints: list[tuple[int, int]]
) -> tuple[int, int]:
    """The (width, height) of the pinpoint that keeps the most image pixels, then wastes the
    fewest; ``pinpoints`` are (height, width) pairs, scanned in order.

    For each candidate the image is fitted inside keeping its aspect (scale s); the effective
    resolution is min(int(w·s)·int(h·s), w·h) and the waste the candidate's area minus it.
    Ties go to the earlier candidate, and a candidate only wins with an effective resolution
    above 0 or, when every candidate's is 0 (a 1×3000 image), with less waste, exactly as
    transformers' ``select_best_resolution`` scans ``image_grid_pinpoints``.
    """
    best, best_effective, best_waste = None, 0, math.inf
    for cand_h, cand_w in pinpoints:
        scale = min(cand_w / width, cand_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = cand_w * cand_h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (cand_w, cand_h), effective, waste
    return best  # type: ignore[return-value]


def fit_inside(width: int, height: int, target_w: int, target_h: int) -> tuple[int, int]:
    """(width, height) after an aspect-keeping resize to fit ``target``, rounding up."""
    scale_w, scale_h = target_w / width, target_h / height
    if scale_w < scale_h:
        return target_w, min(math.ceil(height * scale_w), target_h)
    return min(math.ceil(width * scale_h), target_w), target_h


class AnyRes(ResolutionStrategy):
    """LLaVA-NeXT anyres.

    The image is fitted (aspect kept) into the best pinpoint canvas, padded centred with
    ``fill`` and cut into ``crop_size`` crops, row-major; a base view (the whole image squashed
    to ``crop_size``) goes first. The crops' features are stitched into one map, the rows or
    columns covering only padding are removed (``unpad``), and a newline embedding ends every
    row of that map (``newline``); the base view has neither.

    Yaml keys:
      crop_size: side of every view (the encoder's input size, 336 for CLIP-L/14-336).
      pinpoints: candidate canvases as [height, width] pairs, multiples of ``crop_size``, in
        the order and layout of transformers' ``image_grid_pinpoints`` (a llava-hf config's
        list can be copied as it is; the order decides ties).
      newline: append a learnable newline embedding to every row of the stitched crops.
      unpad: remove the padding rows/columns from the stitched feature map.
      fill: RGB colour of the padding (LLaVA-NeXT pads with black).
      interpolation: bicubic | bilinear | nearest.
      reduced_decode: decode a JPEG at a DCT scale (1/2, 1/4, 1/8) when that still covers
        every resize target (no upscaling): 2-4x less decoding for photos much larger than
        the canvas; the views then differ from a full decode by a few levels (mean < 0.5 of
        255). false: views bit-identical to transformers' processor on the same JPEG.
    """

    def __init__(
        self,
        *,
        crop_size: int = 336,
        pinpoints: list[list[int]] | None = None,
        newline: bool = True,
        unpad: bool = True,
        fill: list[int] | tuple[int, int, int] = (0, 0, 0),
        interpolation: str = "bicubic",
        reduced_decode: bool = True,
    ) -> None:
        pinpoints = pinpoints or [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
        for pair in pinpoints:
            if len(pair) != 2 or pair[0] % crop_size or pair[1] % crop_size:
                raise ValueError(
                    f"resolution.pinpoints entry {list(pair)} must be [height, width], "
                    f"both multiples of crop_size={crop_size}"
                )
        self.crop_size = int(crop_size)
        self.pinpoints = [(int(h), int(w)) for h, w in pinpoints]
        self.newline = bool(newline)
        self.unpad = bool(unpad)
        self.fill = check_fill(fill, "resolution.fill")
        self.mode = interpolation_mode(interpolation)
        self.needs_newline = self.newline
        self.reduced_decode = bool(reduced_decode)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        best_w, best_h = select_best_resolution(width, height, self.pinpoints)
        rows, cols = best_h // self.crop_size, best_w // self.crop_size
        crops = list(range(1, rows * cols + 1))
        return ImageLayout(
            image_size=(width, height),
            view_hw=(self.crop_size, self.crop_size),
            num_views=1 + rows * cols,
            parts=[
                TokenMap([0]),
                TokenMap(crops, rows=rows, cols=cols, newline=self.newline, unpad=self.unpad),
            ],
            grid=(rows, cols),
        )

    def source_size(self, width: int, height: int) -> tuple[int, int]:
        """The larger of the fitted image and the base view, side by side."""
        if not self.reduced_decode:
            return width, height
        best_w, best_h = select_best_resolution(width, height, self.pinpoints)
        new_w, new_h = fit_inside(width, height, best_w, best_h)
        return max(new_w, self.crop_size), max(new_h, self.crop_size)

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        width, height = layout.image_size
        rows, cols = layout.grid
        canvas_w, canvas_h = cols * self.crop_size, rows * self.crop_size
        new_w, new_h = fit_inside(width, height, canvas_w, canvas_h)
        # Preallocated output: every view is written once, by its only CHW copy.
        views = torch.empty((1 + rows * cols, 3, self.crop_size, self.crop_size), dtype=torch.uint8)
        fitted = resize(pixels, (new_h, new_w), self.mode)
        grid_into(views[1:], pad_centred(fitted, (canvas_h, canvas_w), self.fill), rows, cols)
        view_into(views[0], resize(pixels, (self.crop_size, self.crop_size), self.mode))
        return views
