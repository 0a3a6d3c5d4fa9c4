"""mPLUG-Owl3 adaptive crop: the anchor grid that best matches the image's shape."""

from __future__ import annotations

import torch

from mmfw.resolution.base import ResolutionStrategy, interpolation_mode, resize, split_grid
from mmfw.resolution.layout import ImageLayout, separate_views

GRID_SQU_6 = [[2, 2], [1, 3], [1, 4], [3, 1], [4, 1], [2, 3], [3, 2]]


def _iou_at_origin(
    w1: torch.Tensor, h1: torch.Tensor, w2: torch.Tensor, h2: torch.Tensor
) -> torch.Tensor:
    """IoU of boxes that all start at (0, 0): overlap = min widths × min heights."""
    inter = torch.minimum(w1, w2) * torch.minimum(h1, h2)
    return inter / (w1 * h1 + w2 * h2 - inter + 1e-5)


def rank_anchors(width: int, height: int, anchors: list[list[int]], size: int) -> int:
    """Index of the best anchor: argmax of 100·shape-IoU + IoU (first maximum wins).

    IoU compares the anchor's box (cols·size × rows·size) with the image's box; the shape
    IoU compares it with a box of the anchor's width and the image's aspect ratio (its height
    truncated to an integer, as the released code stores it in an int64 tensor).
    """
    rows = torch.tensor([a[0] for a in anchors], dtype=torch.int64)
    cols = torch.tensor([a[1] for a in anchors], dtype=torch.int64)
    aw, ah = cols * size, rows * size
    iou = _iou_at_origin(aw, ah, torch.tensor(width), torch.tensor(height))
    shaped_h = (height / width * aw).to(torch.int64)
    shape_iou = _iou_at_origin(aw, ah, aw, shaped_h)
    return int(torch.argmax(shape_iou * 100 + iou))


class AdaptiveCrop(ResolutionStrategy):
    """mPLUG-Owl3: stretch the image to the best anchor grid (rows·size × cols·size, aspect not
    kept), cut it into crops row-major, and add a global view (the image squashed to ``size``)
    after the crops. Samples with several images (and video frames) are not cropped: each image
    is one global view. Every view contributes its own tokens (no stitching, no newline).

    Yaml keys:
      size: side of every view (the released code uses 384 with SigLIP-so400m-patch14-384;
        378 gives the same 27×27 = 729 tokens).
      anchors: candidate [rows, cols] grids (released default ``grid_squ_6``).
      global_view: add the global view after the crops.
      crop_multi_image: also crop images of multi-image samples (the paper does not).
      interpolation: bicubic (released) | bilinear | nearest.
    """

    def __init__(
        self,
        *,
        size: int = 384,
        anchors: list[list[int]] | None = None,
        global_view: bool = True,
        crop_multi_image: bool = False,
        interpolation: str = "bicubic",
    ) -> None:
        anchors = anchors or GRID_SQU_6
        for a in anchors:
            if len(a) != 2 or min(a) < 1:
                raise ValueError(
                    f"resolution.anchors entry {list(a)} must be [rows, cols], both >= 1"
                )
        self.size = int(size)
        self.anchors = [[int(a[0]), int(a[1])] for a in anchors]
        self.global_view = bool(global_view)
        self.crop_multi_image = bool(crop_multi_image)
        self.mode = interpolation_mode(interpolation)

    def layout(
        self, width: int, height: int, *, images_in_sample: int = 1, **options
    ) -> ImageLayout:
        if images_in_sample > 1 and not self.crop_multi_image:
            rows, cols, crops = 1, 1, 0
        else:
            rows, cols = self.anchors[rank_anchors(width, height, self.anchors, self.size)]
            crops = rows * cols
        n = crops + int(self.global_view or crops == 0)
        return separate_views((width, height), self.size, n, (rows, cols))

    def render(self, pixels: torch.Tensor, layout: ImageLayout, **options) -> torch.Tensor:
        glob = resize(pixels, (self.size, self.size), self.mode).unsqueeze(0)
        if layout.num_views == 1:  # uncropped, or a 1x1 crop (which is the same squashed view)
            return glob
        rows, cols = layout.grid
        crops = split_grid(
            resize(pixels, (rows * self.size, cols * self.size), self.mode), rows, cols
        )
        return torch.cat([crops, glob]) if self.global_view else crops
