"""TimmEncoder: a timm ViT built without download; tokens of the chosen block."""

from __future__ import annotations

import torch

from mmfw.models.encoders.timm_encoder import TimmEncoder

KW = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 3, "num_heads": 2}


def test_tokens_of_the_selected_block_without_prefix():
    torch.manual_seed(0)
    enc = TimmEncoder(
        model_name="vit_tiny_patch16_224",
        model_kwargs=KW,
        select_layer=-2,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    ).eval()
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    out = enc(pixels)
    assert out.shape == (2, 16, 32) and enc.patch_size == 8 and enc.out_dim == 32
    x = (pixels.float() / 255 - 0.5) / 0.5
    blocks = enc.model.forward_intermediates(
        x, indices=[1], norm=False, output_fmt="NLC", intermediates_only=True
    )
    torch.testing.assert_close(out, blocks[0])
