"""How an image's views become image tokens, and the ONE function that counts them.

A resolution strategy turns an image into views (equal-sized pixel crops) and an
:class:`ImageLayout`, which says how the views' feature maps are arranged into tokens:
which views are stitched into one map, whether a newline embedding ends every row, whether a
separator sits between parts. The data pipeline (placeholder expansion) and the model (which
assembles the embeddings) both take the count from :func:`count_image_tokens`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TokenMap:
    """Views whose feature maps are stitched, row-major, into one ``rows × cols`` map.

    ``newline`` appends one newline embedding after every row of the stitched map;
    ``unpad`` removes the feature rows/columns that only cover the padding added around the
    image (LLaVA-NeXT), computed from the layout's original image size.
    """

    views: list[int]
    rows: int = 1
    cols: int = 1
    newline: bool = False
    unpad: bool = False

    def __post_init__(self) -> None:
        if len(self.views) != self.rows * self.cols:
            raise ValueError(
                f"TokenMap has {len(self.views)} views for a {self.rows}x{self.cols} grid"
            )


@dataclass
class Separator:
    """One learnable separator embedding (e.g. between IXC's global and local parts)."""


@dataclass
class ImageLayout:
    """Views of one image and how their features become tokens.

    ``image_size`` is the original (width, height); ``view_hw`` the (height, width) of every
    view in pixels; ``grid`` the (rows, cols) of the local crops, for reports and plans.
    """

    image_size: tuple[int, int]
    view_hw: tuple[int, int]
    num_views: int
    parts: list[TokenMap | Separator] = field(default_factory=list)
    grid: tuple[int, int] = (1, 1)


def separate_views(
    image_size: tuple[int, int], side: int, num_views: int, grid: tuple[int, int]
) -> ImageLayout:
    """``num_views`` square views each encoded on its own (one token map per view)."""
    return ImageLayout(
        image_size=image_size,
        view_hw=(side, side),
        num_views=num_views,
        parts=[TokenMap([i]) for i in range(num_views)],
        grid=grid,
    )


@dataclass(frozen=True)
class FeatureGrid:
    """Pixel view → token grid of the encoder followed by the connector.

    ``patch``: encoder patch size in pixels; ``merge``: the connector merges ``merge × merge``
    neighbouring tokens into one; ``fixed``: the connector always outputs this (rows, cols)
    grid whatever its input (resampler, C-Abstractor). Picklable, so data workers can use it.
    """

    patch: int
    merge: int = 1
    fixed: tuple[int, int] | None = None

    def __call__(self, view_hw: tuple[int, int]) -> tuple[int, int]:
        h, w = view_hw[0] // self.patch, view_hw[1] // self.patch
        if self.fixed is not None:
            return self.fixed
        return math.ceil(h / self.merge), math.ceil(w / self.merge)


def unpadded_hw(height: int, width: int, image_size: tuple[int, int]) -> tuple[int, int]:
    """Shape of a stitched ``height × width`` feature map once the padding is cut off.

    The image (``image_size`` = (width, height)) was fitted into the canvas keeping its aspect
    and centred; the rows (or columns) beyond its scaled extent are padding.
    """
    orig_w, orig_h = image_size
    if orig_w / orig_h > width / height:
        new_h = int(round(orig_h * (width / orig_w), 7))
        pad = (height - new_h) // 2
        return height - 2 * pad, width
    new_w = int(round(orig_w * (height / orig_h), 7))
    pad = (width - new_w) // 2
    return height, width - 2 * pad


def part_shape(part: TokenMap, layout: ImageLayout, grid: FeatureGrid) -> tuple[int, int]:
    """(rows, cols) of a token map's features, before newline tokens."""
    fh, fw = grid(layout.view_hw)
    h, w = part.rows * fh, part.cols * fw
    if part.unpad:
        h, w = unpadded_hw(h, w, layout.image_size)
    return h, w


def count_image_tokens(layout: ImageLayout, grid: FeatureGrid) -> int:
    """Number of embeddings the model produces for one image: the single source of truth."""
    total = 0
    for part in layout.parts:
        if isinstance(part, Separator):
            total += 1
            continue
        h, w = part_shape(part, layout, grid)
        total += h * w + (h if part.newline else 0)
    return total
