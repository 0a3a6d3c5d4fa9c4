"""HFVisionEncoder: select_layer, CLS dropping, normalisation, other view sizes."""

from __future__ import annotations

import pytest
import torch

from mmfw.models.encoders.hf_vision import HFVisionEncoder

TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def clip(**kw) -> HFVisionEncoder:
    args = {
        "model_class": "transformers.CLIPVisionModel",
        "config": TINY,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
    }
    return HFVisionEncoder(**{**args, **kw}).eval()


def test_select_layer_and_cls_drop_match_the_hf_model():
    torch.manual_seed(0)
    enc = clip(select_layer=-2, drop_cls=True)
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    out = enc(pixels)
    x = (pixels.float() / 255 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        CLIP_STD
    ).view(1, 3, 1, 1)
    ref = enc.model(pixel_values=x, output_hidden_states=True).hidden_states[-2][:, 1:]
    assert out.shape == (2, 16, 32)
    torch.testing.assert_close(out, ref)
    assert clip(drop_cls=False)(pixels).shape == (2, 17, 32)


def test_larger_views_interpolate_position_embeddings():
    enc = clip()
    assert enc(torch.zeros(1, 3, 64, 48, dtype=torch.uint8)).shape == (1, 8 * 6, 32)


def test_siglip_has_no_cls_and_says_so():
    args = {
        "model_class": "transformers.SiglipVisionModel",
        "config": {**TINY, "vision_use_head": False},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }
    enc = HFVisionEncoder(**args, drop_cls=False)
    assert enc(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)).shape == (1, 16, 32)
    assert not any(n.startswith("head") for n, _ in enc.model.named_parameters())
    with pytest.raises(ValueError, match="drop_cls"):
        HFVisionEncoder(**args, drop_cls=True)


def test_select_layer_out_of_range_names_the_key():
    with pytest.raises(ValueError, match="encoder.select_layer"):
        clip(select_layer=-9)


def test_a_378_px_encoder_runs_on_672_px_views():
    """MM1.5: position embeddings interpolated from 378 to 672 (27x27 → 48x48 patches)."""
    cfg = {**TINY, "image_size": 378, "patch_size": 14, "num_hidden_layers": 1}
    enc = clip(config=cfg, select_layer=-1)
    assert enc(torch.zeros(1, 3, 378, 378, dtype=torch.uint8)).shape == (1, 27 * 27, 32)
    assert enc(torch.zeros(1, 3, 672, 672, dtype=torch.uint8)).shape == (1, 48 * 48, 32)
