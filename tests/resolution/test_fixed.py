"""FixedResolution: LLaVA-1.5 pad geometry, resize, and every image mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mmfw.resolution.fixed import FixedResolution, pad_to_square


def test_pad_centres_on_fill_colour():
    img = torch.full((3, 2, 6), 255, dtype=torch.uint8)  # 6 wide, 2 high
    sq = pad_to_square(img, (122, 116, 104))
    assert sq.shape == (3, 6, 6)
    # LLaVA's expand2square: top offset (6 - 2) // 2 = 2
    assert (sq[:, 2:4, :] == 255).all()
    assert sq[:, 0, 0].tolist() == [122, 116, 104]
    assert sq[:, 5, 5].tolist() == [122, 116, 104]


def test_pad_matches_llava_expand2square_with_pil():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(5, 9, 3), dtype=np.uint8)
    pil = Image.fromarray(arr)
    expected = Image.new("RGB", (9, 9), (122, 116, 104))
    expected.paste(pil, (0, (9 - 5) // 2))
    got = pad_to_square(torch.from_numpy(arr).permute(2, 0, 1), (122, 116, 104))
    assert torch.equal(got, torch.from_numpy(np.asarray(expected)).permute(2, 0, 1))


@pytest.mark.parametrize("aspect", ["pad", "resize"])
def test_one_view_of_the_configured_size(aspect):
    strat = FixedResolution(size=32, aspect=aspect)
    views, layout = strat(Image.new("RGB", (100, 40), (10, 200, 30)))
    assert views.shape == (1, 3, 32, 32) and views.dtype == torch.uint8
    assert layout.num_views == 1 and layout.image_size == (100, 40)
    if aspect == "resize":
        assert (views[0, 1] > 190).all()  # all green: nothing padded
    else:
        assert views[0, :, 0, 16].tolist() == [122, 116, 104]  # top row is padding


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (7, 3), 128),
        lambda: Image.new("RGBA", (3, 7), (255, 0, 0, 0)),
        lambda: Image.new("P", (5, 5)),
        lambda: Image.new("CMYK", (5, 9), (0, 255, 0, 0)),
        lambda: Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000),
        lambda: Image.new("LA", (4, 4)),
        lambda: Image.new("1", (9, 2)),
        lambda: Image.new("RGB", (1, 1)),
        lambda: Image.new("RGB", (1, 10000)),
        lambda: Image.new("RGB", (10000, 1)),
    ],
)
def test_any_image_mode_and_extreme_sizes(make):
    for aspect in ("pad", "resize"):
        views, layout = FixedResolution(size=16, aspect=aspect)(make())
        assert views.shape == (1, 3, 16, 16)


def test_16bit_image_is_scaled_not_clipped():
    img = Image.fromarray(np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)
    views, _ = FixedResolution(size=4, aspect="resize", interpolation="nearest")(img)
    assert views.max() == 255 and views.min() == 0


def test_bad_values_name_the_key():
    with pytest.raises(ValueError, match="resolution.aspect"):
        FixedResolution(size=8, aspect="crop")
    with pytest.raises(ValueError, match="resolution.interpolation"):
        FixedResolution(size=8, interpolation="lanczos9")
