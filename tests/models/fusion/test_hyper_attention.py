"""Hyper attention (mPLUG-Owl3 HATB) in a tiny Llama and a tiny Qwen2."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mmfw.data.collate import PadCollator
from mmfw.data.templates.base import Turn
from mmfw.models.fusion.hyper_attention import HyperAttention, HyperContext
from tests.helpers import tiny_components

QWEN2 = ["llm.model_type=qwen2", "llm.config.num_key_value_heads=2"]


def build(tmp_path, *overrides):
    torch.manual_seed(0)
    return tiny_components(tmp_path, "fusion=tiny_hyper_attention", *overrides)[1]


def batch_of(parts, side="left"):
    red, blue = Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (64, 64), (30, 30, 200))
    samples = [
        parts.processor.prompt_sample([Turn("human", "<image>\nWhat colour is it?")], [red]),
        parts.processor.prompt_sample(
            [Turn("human", "first text, then <image> and <image>: which?")], [red, blue]
        ),
    ]
    return PadCollator(parts.tokenizer.pad_token_id, padding_side=side)(samples)


def run(model, batch):
    return model(
        batch["input_ids"], batch["attention_mask"], None, batch["images"], batch["layouts"]
    ).logits


def plain_logits(model, batch):
    """The same model with its hyper layers swapped back to the original attention."""
    layers = model.llm.model.layers
    hyper = {
        i: layer.self_attn
        for i, layer in enumerate(layers)
        if isinstance(layer.self_attn, HyperAttention)
    }
    try:
        for i, h in hyper.items():
            layers[i].self_attn = h.attn
        return run(model, batch)
    finally:
        for i, h in hyper.items():
            layers[i].self_attn = h


def close_gates(model):
    for layer in model.llm.model.layers:
        if isinstance(layer.self_attn, HyperAttention):
            torch.nn.init.zeros_(layer.self_attn.gate.weight)
            torch.nn.init.constant_(layer.self_attn.gate.bias, float("-inf"))


@pytest.mark.parametrize("llm", [[], QWEN2], ids=["llama", "qwen2"])
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_closed_gate_reproduces_the_plain_layer_exactly(tmp_path, llm, impl):
    parts = build(tmp_path, *llm, f"llm.attn_implementation={impl}")
    model = parts.model.eval()
    batch = batch_of(parts)
    with torch.no_grad():
        open_gate = run(model, batch)
        close_gates(model)
        closed = run(model, batch)
        plain = plain_logits(model, batch)
    assert torch.equal(closed, plain)
    assert not torch.allclose(open_gate, plain)  # an open gate does change the output


def test_single_softmax_before_any_image_equals_the_plain_layer(tmp_path):
    parts = build(tmp_path, "fusion.variant=single_softmax")
    model = parts.model.eval()
    batch = batch_of(parts, side="right")
    with torch.no_grad():
        hyper, plain = run(model, batch), plain_logits(model, batch)
    ids = batch["input_ids"]
    first = int((ids[1] == model.image_token_id).nonzero()[0])
    # Sample 1's text before its first image sees no visual key: identical up to float rounding.
    torch.testing.assert_close(hyper[1, :first], plain[1, :first], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(hyper[1, first + 1 :], plain[1, first + 1 :])


def test_one_placeholder_per_token_map(tmp_path):
    parts = build(tmp_path, "resolution=tiny_hd9")  # global map, separator, local map
    sample = parts.processor.prompt_sample(
        [Turn("human", "<image>\nQ")], [Image.new("RGB", (90, 40))]
    )
    assert sample.input_ids.count(parts.model.image_token_id) == 2
    batch = PadCollator(parts.tokenizer.pad_token_id)([sample])
    assert run(parts.model, batch).shape[0] == 1


def test_mi_rope_and_media_mask_on_a_hand_built_example(tmp_path):
    parts = build(tmp_path)
    model = parts.model
    hyper = model.llm.model.layers[1].self_attn
    hidden = model.hidden_size
    feats = [[torch.randn(3, hidden), torch.randn(2, hidden)], []]
    # sample 0: placeholders at sequence indices 2 and 5, position ids 1 and 4 (one pad on the left)
    ctx = HyperContext(
        feats,
        index=[[2, 5], []],
        position=[[1, 4], []],
        key_mask=torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1]] * 2),
    )
    model.fusion.context = ctx
    keys, values, owner, valid = hyper._visual_kv(ctx)
    assert owner[0].tolist() == [2, 2, 2, 5, 5] and valid[1].tolist() == [False] * 5
    # MI-RoPE: the keys of image 0 are rotated with position 1, those of image 1 with position 4.
    norm, rotary, _ = hyper._shared
    kv = hyper.v_kv_proj(norm(feats[0][1])).view(2, hyper.n_kv, 2, hyper.head_dim)
    raw_key, raw_value = kv[:, :, 0].transpose(0, 1), kv[:, :, 1].transpose(0, 1)
    cos, sin = rotary(raw_key, position_ids=torch.tensor([[4, 4]]))
    expected = (
        raw_key * cos
        + torch.cat([-raw_key[..., hyper.head_dim // 2 :], raw_key[..., : hyper.head_dim // 2]], -1)
        * sin
    )
    torch.testing.assert_close(keys[0, :, 3:5], expected)
    torch.testing.assert_close(values[0, :, 3:5], raw_value)  # values are not rotated
    mask, visible = hyper._media_mask(ctx, q_len=8, past=0)
    # query i sees image k iff i >= its placeholder index
    assert mask[0, :, 0].tolist() == [False, False, True, True, True, True, True, True]
    assert mask[0, :, 4].tolist() == [False] * 5 + [True] * 3
    assert visible[1].tolist() == [False] * 8
    # a decode step (past the 8-token prompt) sees every image of its sample
    step_mask, _ = hyper._media_mask(ctx, q_len=1, past=8)
    assert step_mask[0, 0].tolist() == [True] * 5


@pytest.mark.parametrize("variant", ["gated", "single_softmax"])
def test_generation_with_kv_cache_equals_without(tmp_path, variant):
    parts = build(tmp_path, f"fusion.variant={variant}")
    model = parts.model.eval()
    batch = batch_of(parts, side="left")
    steps = 6
    with torch.no_grad():
        cached = model.generate(
            batch["input_ids"],
            batch["attention_mask"],
            batch["images"],
            batch["layouts"],
            max_new_tokens=steps,
            pad_token_id=0,
        )
        ids, mask = batch["input_ids"], batch["attention_mask"]
        for _ in range(steps):  # greedy, recomputing the whole sequence each step
            logits = model(ids, mask, None, batch["images"], batch["layouts"]).logits
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
    assert cached.tolist() == ids[:, -steps:].tolist()


def test_layers_are_validated(tmp_path):
    with pytest.raises(Exception, match="fusion.layers"):
        build(tmp_path, "fusion.layers=[5]")
