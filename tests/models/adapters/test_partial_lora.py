"""Partial LoRA: the delta only touches image-token positions."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from mmfw.data.collate import PadCollator
from mmfw.data.templates.base import Turn
from mmfw.models.adapters.image_positions import ImagePositions
from mmfw.models.adapters.partial_lora import PartialLoRALinear
from tests.helpers import tiny_components

PLORA = [
    "+stage.adapters.plora._target_=mmfw.models.adapters.partial_lora.PartialLoRA",
    "+stage.adapters.plora.r=4",
]


def test_linear_changes_only_masked_positions():
    positions = ImagePositions()
    layer = PartialLoRALinear(nn.Linear(6, 5), r=2, alpha=4, dropout=0.0, positions=positions)
    nn.init.normal_(layer.lora_B.weight)
    x = torch.randn(2, 4, 6)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    positions.current = mask
    out = layer(x)
    base = layer.base(x)
    assert torch.equal(out[~mask], base[~mask])
    assert not torch.allclose(out[mask], base[mask])
    positions.current = None  # e.g. a decode step: no image positions
    assert torch.equal(layer(x), base)


def test_text_before_the_image_is_unchanged_in_the_whole_model(tmp_path):
    torch.manual_seed(0)
    _, parts = tiny_components(tmp_path, *PLORA)
    model = parts.model.eval()
    wrapped = [m for m in model.llm.modules() if isinstance(m, PartialLoRALinear)]
    assert wrapped and all(f"{n}" for n in model.adapter_params)
    sample = parts.processor.prompt_sample(
        [Turn("human", "some text first <image> then more")],
        [Image.new("RGB", (64, 64), (9, 99, 199))],
    )
    batch = PadCollator(parts.tokenizer.pad_token_id)([sample])
    args = (batch["input_ids"], batch["attention_mask"], None, batch["images"], batch["layouts"])
    with torch.no_grad():
        before = model(*args).logits
        for m in wrapped:
            nn.init.normal_(m.lora_B.weight, std=0.5)
        after = model(*args).logits
    first = int((batch["input_ids"][0] == model.image_token_id).nonzero()[0])
    assert torch.equal(before[0, :first], after[0, :first])  # causal: text before the image
    assert not torch.allclose(before[0, first:], after[0, first:])


def test_adapter_parameters_train_inside_a_frozen_llm(tmp_path):
    _, parts = tiny_components(tmp_path, *PLORA, "stage=align")
    from hydra.utils import instantiate

    from tests.helpers import tiny_config

    stage = instantiate(tiny_config(*PLORA, "stage=align").stage)
    stage.freeze(parts.model)
    trainable = {n for n, p in parts.model.named_parameters() if p.requires_grad}
    assert trainable >= parts.model.adapter_params and any("lora_A" in n for n in trainable)
    assert not any(n.startswith("llm.") and "lora_" not in n for n in trainable)
