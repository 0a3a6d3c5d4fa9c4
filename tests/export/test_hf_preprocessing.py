"""The export's image processor gives the pixels mmfw's resolution strategy gives, for random
image sizes, and its processor expands the image token to mmfw's token count."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from mmfw.data.templates.base import Turn
from mmfw.export.hf_processor import build_processor, export_tokenizer
from mmfw.export.hf_support import describe
from tests.helpers import tiny_components

STRATEGIES = {
    "pad": ("hf_llava", ()),
    "resize": ("hf_llava", ("resolution=fixed_64",)),
    "siglip_pad": ("hf_llava", ("encoder=tiny_siglip", "resolution.fill=[127,127,127]")),
    "anyres": ("hf_llava_next", ("resolution=tiny_anyres",)),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_pixels_and_token_counts_match(name, tmp_path):
    fmt, overrides = STRATEGIES[name]
    cfg, parts = tiny_components(tmp_path, *overrides)
    arch = describe(cfg, parts.model, fmt)
    tok = export_tokenizer(tmp_path / "tokenizer", "<image>", parts.template)
    processor = build_processor(arch, tok, parts.model.encoder.patch_size)
    rng = random.Random(0)
    sizes = [(rng.randint(1, 300), rng.randint(1, 300)) for _ in range(40)] + [
        (1, 300),
        (300, 1),
        (64, 64),
    ]
    for w, h in sizes:
        image = Image.frombytes("RGB", (w, h), bytes(rng.getrandbits(8) for _ in range(w * h * 3)))
        views, layout = parts.strategy(image)
        ours = parts.model.encoder.normalise(views, torch.float32)
        enc = processor(images=image, text="<image>", return_tensors="pt")
        theirs = enc["pixel_values"][0] if fmt == "hf_llava_next" else enc["pixel_values"]
        assert theirs.shape == ours.shape, (w, h)
        assert (theirs - ours).abs().max().item() < 1e-5, (w, h)
        sample = parts.processor.prompt_sample([Turn("human", "<image>")], [image])
        n_ours = sample.input_ids.count(parts.model.image_token_id)
        assert (enc["input_ids"][0] == tok.image_token_id).sum().item() == n_ours, (w, h)
