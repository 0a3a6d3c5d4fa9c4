"""The VisionLanguageModel: token accounting, fusion, loss, batched generation."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from mmfw.data.collate import PadCollator
from mmfw.data.processor import Sample
from mmfw.data.templates.base import Turn
from mmfw.resolution.layout import ImageLayout, Separator, TokenMap, count_image_tokens
from tests.helpers import tiny_components


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    torch.manual_seed(0)
    _, comps = tiny_components(tmp_path_factory.mktemp("vlm"))
    return comps


def _prompt(parts, size, question="What colour is the small object?"):
    img = Image.new("RGB", size, (200, 30, 30))
    return parts.processor.prompt_sample([Turn("human", f"<image>\n{question}")], [img])


def test_placeholders_equal_embeddings_for_many_sizes(parts):
    rng = random.Random(0)
    for _ in range(60):
        size = (rng.randint(1, 900), rng.randint(1, 900))
        sample = _prompt(parts, size)
        n_slots = sample.input_ids.count(parts.model.image_token_id)
        embeds = parts.model.encode_images(sample.images, sample.layouts)
        assert (
            n_slots
            == embeds[0].shape[0]
            == count_image_tokens(sample.layouts[0], parts.model.feature_grid)
        )


def test_assembly_of_a_multi_part_layout_matches_the_count(parts):
    model = parts.model
    model.image_newline = torch.nn.Parameter(torch.zeros(model.hidden_size))
    model.image_separator = torch.nn.Parameter(torch.ones(model.hidden_size))
    try:
        layout = ImageLayout(
            image_size=(128, 64),
            view_hw=(64, 64),
            num_views=3,
            parts=[
                TokenMap([0], newline=True),
                Separator(),
                TokenMap([1, 2], rows=1, cols=2, newline=True, unpad=True),
            ],
        )
        views = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
        out = model.encode_images([views], [layout])[0]
        # global 8x8 + 8 newlines, separator, local 8x16 (a 2:1 image fills it) + 8 newlines
        assert out.shape[0] == count_image_tokens(layout, model.feature_grid) == 72 + 1 + 136
        assert torch.equal(out[72], model.image_separator.detach())
        assert torch.equal(out[8], model.image_newline.detach())  # end of the first global row
    finally:
        model.image_newline = None
        model.image_separator = None


def test_mismatched_placeholders_raise(parts):
    sample = _prompt(parts, (64, 64))
    batch = PadCollator(parts.tokenizer.pad_token_id)([sample])
    ids = batch["input_ids"].clone()
    ids[0, ids[0].tolist().index(parts.model.image_token_id)] = 5  # drop one slot
    with pytest.raises(ValueError, match="image placeholder"):
        parts.model(ids, batch["attention_mask"], images=batch["images"], layouts=batch["layouts"])


def test_loss_backpropagates_into_every_module(parts):
    turns = [Turn("human", "<image>\nWhat colour?"), Turn("gpt", "red")]
    pixels, layouts = parts.processor.views([Image.new("RGB", (64, 64), (0, 0, 255))])
    ids, labels = parts.processor.encode(parts.template.render(turns), layouts)
    batch = PadCollator(parts.tokenizer.pad_token_id)([Sample(ids, labels, pixels, layouts)])
    parts.model.zero_grad()
    out = parts.model(
        batch["input_ids"],
        batch["attention_mask"],
        batch["labels"],
        batch["images"],
        batch["layouts"],
    )
    out.loss.backward()
    for name in ("encoder", "connector", "llm"):
        grads = [p.grad for p in getattr(parts.model, name).parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name


def test_batched_left_padded_generation_equals_one_by_one(parts):
    torch.manual_seed(1)
    model = parts.model.eval()
    tok = parts.tokenizer
    samples = [
        _prompt(parts, (64, 64)),
        _prompt(parts, (40, 90), "What colour is the small object in the corner?"),
    ]
    collate = PadCollator(tok.pad_token_id, padding_side="left")
    kw = {"max_new_tokens": 6, "eos_token_id": None, "pad_token_id": tok.pad_token_id}
    batch = collate(samples)
    together = model.generate(
        batch["input_ids"], batch["attention_mask"], batch["images"], batch["layouts"], **kw
    )
    for i, s in enumerate(samples):
        one = collate([s])
        alone = model.generate(
            one["input_ids"], one["attention_mask"], one["images"], one["layouts"], **kw
        )
        assert together[i].tolist() == alone[0].tolist()


def test_centred_image_tokens_have_zero_mean_per_view(tmp_path):
    """model.center_image_tokens subtracts each view's mean token after the connector, so two
    views that differ by a constant shift of their connector output encode the same."""
    torch.manual_seed(0)
    _, plain = tiny_components(tmp_path / "plain")
    torch.manual_seed(0)
    _, centred = tiny_components(tmp_path / "centred", "model.center_image_tokens=true")
    assert centred.model.center_image_tokens and not plain.model.center_image_tokens
    views = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    layout = ImageLayout(image_size=(64, 64), view_hw=(64, 64), num_views=1,
                         parts=[TokenMap([0])])  # fmt: skip
    a = centred.model.encode_images([views[:1], views[1:]], [layout, layout])
    b = plain.model.encode_images([views[:1], views[1:]], [layout, layout])
    for got, ref in zip(a, b, strict=True):
        assert got.mean(0).abs().max() < 1e-5
        assert torch.allclose(got, ref - ref.mean(0, keepdim=True), atol=1e-5)
