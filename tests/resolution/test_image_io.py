"""Image decoding: fast JPEG path agrees with PIL; other formats go through PIL."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mmfw.resolution.image_io import load_image


def test_jpeg_decodes_to_a_tensor_close_to_pil(tmp_path):
    rng = np.random.default_rng(0)
    arr = np.kron(
        rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), np.ones((8, 8, 1), dtype=np.uint8)
    )
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    fast = load_image(tmp_path / "a.jpg")
    ref = torch.from_numpy(
        np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB")).copy()
    ).permute(2, 0, 1)
    assert (
        isinstance(fast, torch.Tensor) and fast.shape == (3, 96, 128) and fast.dtype == torch.uint8
    )
    assert (fast.int() - ref.int()).abs().max() <= 2  # libjpeg builds may round differently


def test_png_with_alpha_is_composited_on_white(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert (
        isinstance(img, Image.Image)
        and img.mode == "RGB"
        and img.getpixel((0, 0)) == (255, 255, 255)
    )


def test_grayscale_jpeg_becomes_rgb(tmp_path):
    Image.new("L", (10, 6), 77).save(tmp_path / "g.jpg")
    img = load_image(tmp_path / "g.jpg")
    assert img.shape == (3, 6, 10) and int(img[:, 3, 3].float().mean().round()) in range(75, 80)
