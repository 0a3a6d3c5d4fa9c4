"""Image decoding: fast JPEG path agrees with PIL; other formats go through PIL; JPEGs are
decoded at a reduced DCT scale only where a strategy's resizes allow it."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mmfw.data.processor import SampleProcessor
from mmfw.resolution.anyres import AnyRes
from mmfw.resolution.dynamic_partition import DynamicPartition
from mmfw.resolution.image_io import ReducedImage, load_image


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


def photo_jpeg(path, w: int, h: int):
    """A photo-like JPEG (smooth regions and edges)."""
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.BICUBIC).save(path, quality=90)
    return path


def test_reduced_decode_keeps_the_layout_and_the_picture(tmp_path):
    path = photo_jpeg(tmp_path / "a.jpg", 1344, 756)
    strategy = AnyRes()  # fitted 672x378 and a 336 base view: a 1/2-scale decode covers both
    reduced = load_image(path, strategy.source_size)
    assert isinstance(reduced, ReducedImage) and reduced.size == (1344, 756)
    assert tuple(reduced.pixels.shape) == (3, 378, 672)
    views, layout = strategy(reduced)
    full_views, full_layout = strategy(load_image(path))
    assert layout == full_layout  # token counts never depend on the decode scale
    diff = (views.int() - full_views.int()).abs()
    assert diff.max() <= 12 and diff.float().mean() < 1.0
    # Switched off, or when a reduced scale would be below a resize target: full decode.
    assert isinstance(load_image(path, AnyRes(reduced_decode=False).source_size), torch.Tensor)
    hd25 = DynamicPartition(max_crops=25)  # resizes to 2016 wide: never from 672
    assert isinstance(load_image(path, hd25.source_size), torch.Tensor)
    assert isinstance(load_image(path, DynamicPartition(max_crops=1).source_size), ReducedImage)


def test_processor_opens_jpegs_at_the_strategys_scale(tmp_path):
    photo_jpeg(tmp_path / "a.jpg", 1344, 756)
    Image.new("RGB", (1344, 756)).save(tmp_path / "b.png")
    images = SampleProcessor.open_images(["a.jpg", "b.png"], tmp_path, AnyRes().source_size)
    assert isinstance(images[0], ReducedImage) and isinstance(images[1], Image.Image)
    assert isinstance(SampleProcessor.open_images(["a.jpg"], tmp_path)[0], torch.Tensor)
