"""Decode any PIL image (palette, grayscale, RGBA, CMYK, 16-bit) to an RGB uint8 tensor."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """An 8-bit RGB copy of ``image``; transparency is composited on ``background``."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit grayscale: PIL's convert("L") clips instead of scaling.
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        canvas = Image.new("RGB", image.size, background)
        canvas.paste(image, mask=image.getchannel("A"))
        return canvas
    return image.convert("RGB")


def pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """(3, H, W) uint8 tensor of an RGB PIL image, stored channels-last (H, W, 3 in memory, as
    decode_jpeg returns it): one copy out of PIL, no transposition."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)


class ReducedImage(NamedTuple):
    """A JPEG decoded at a reduced DCT scale, and the full size its layout is computed from
    (token counts must not depend on the decode scale)."""

    pixels: torch.Tensor  # (3, h, w) uint8, h, w about the full size / 2, 4 or 8
    size: tuple[int, int]  # (width, height) of the full image


SourceSize = Callable[[int, int], tuple[int, int]]


def load_image(
    path: str | Path, need: SourceSize | None = None
) -> Image.Image | torch.Tensor | ReducedImage:
    """Decode an image file for a resolution strategy.

    JPEGs go through torchvision's libjpeg-turbo decoder straight to an RGB uint8 tensor
    (about 3x faster than PIL on 4K images); everything else (PNG with alpha, palette,
    16-bit, WebP, ...) goes through PIL and :func:`to_rgb`.

    ``need`` (a strategy's ``source_size``) maps the full (width, height) to the smallest
    size the strategy resamples from; when libjpeg's DCT scaling (1/2, 1/4, 1/8) still gives
    at least that, the JPEG is decoded at that scale (PIL's ``draft``: 2-4x less work) and
    returned as a :class:`ReducedImage`.
    """
    data = Path(path).read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        if need is not None:
            reduced = decode_reduced(data, need)
            if reduced is not None:
                return reduced
        try:
            return decode_jpeg(
                torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
            )
        except RuntimeError:
            pass  # unusual JPEG: let PIL try
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)


def decode_reduced(data: bytes, need: SourceSize) -> ReducedImage | None:
    """The JPEG ``data`` decoded at the smallest DCT scale that is at least ``need(w, h)``
    in both sides, or None when only the full scale is (then decode_jpeg is faster)."""
    with Image.open(io.BytesIO(data)) as img:
        size = img.size
        need_w, need_h = need(*size)
        if min(size[0] // max(1, need_w), size[1] // max(1, need_h)) < 2:
            return None
        img.draft("RGB", (need_w, need_h))  # picks the scale; never below the requested size
        img.load()
        rgb = to_rgb(img)
    return ReducedImage(pil_to_uint8(rgb), size)
