"""What every vision encoder offers the model: uint8 views in, patch tokens out."""

from __future__ import annotations

import torch
from torch import nn


class VisionEncoder(nn.Module):
    """Base of the encoders: normalises uint8 views and reports its geometry.

    Subclasses set ``out_dim`` (channels of a token) and ``patch_size`` (pixels per token side)
    and implement :meth:`encode` on normalised float pixels.
    """

    out_dim: int
    patch_size: int

    def __init__(self, *, image_mean: list[float], image_std: list[float]) -> None:
        super().__init__()
        if len(image_mean) != 3 or len(image_std) != 3:
            raise ValueError(
                f"encoder.image_mean/image_std need 3 values, got {image_mean}/{image_std}"
            )
        self.register_buffer(
            "image_mean", torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(image_std).view(1, 3, 1, 1), persistent=False
        )

    def normalise(self, pixels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        x = pixels.to(torch.float32) / 255.0
        return ((x - self.image_mean) / self.image_std).to(dtype)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 → (N, (H/p)·(W/p), out_dim) patch tokens, row-major."""
        return self.encode(self.normalise(pixels, self.dtype))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def unused_parameters(self) -> set[str]:
        """Names (relative to the encoder) of parameters the selected features never depend
        on, e.g. the layers after ``select_layer``: they can receive no gradient, so no stage
        trains them (and DDP need not look for unused parameters)."""
        return set()

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
