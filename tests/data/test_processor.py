"""Record → tokens: label masking, placeholder expansion, truncation, bad records in a dataset."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from mmfw.data.collate import PadCollator, TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.formats.llava_json import RecordError, parse_record
from mmfw.data.processor import IGNORE
from mmfw.data.skips import Skipped
from mmfw.data.sources import JsonSource
from tests.helpers import tiny_components


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return tiny_components(tmp_path_factory.mktemp("proc"))[1]


@pytest.fixture()
def folder(tmp_path):
    Image.new("RGB", (80, 50), (0, 200, 0)).save(tmp_path / "img.png")
    return tmp_path


def record(image="img.png", *pairs):
    conv = []
    for q, a in pairs or [("<image>\nWhat colour is it?", "green")]:
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    raw = {"id": "r", "conversations": conv}
    if image:
        raw["image"] = image
    return parse_record(raw)


def test_labels_cover_exactly_the_assistant_tokens(parts, folder):
    rec = record("img.png", ("<image>\nWhat colour is it?", "green"), ("Sure?", "yes green"))
    s = parts.processor.training_sample(rec, folder)
    tok = parts.tokenizer
    targets = [t for t, lab in zip(s.input_ids, s.labels, strict=True) if lab != IGNORE]
    assert tok.decode(targets) == " green</s> yes green</s>"
    assert all(lab in (IGNORE, t) for t, lab in zip(s.input_ids, s.labels, strict=True))
    n_img = s.input_ids.count(parts.model.image_token_id)
    assert n_img == parts.processor.counter(s.layouts[0]) == 64
    assert s.input_ids[0] == tok.bos_token_id


def test_text_only_record_has_no_images(parts, folder):
    s = parts.processor.training_sample(record(None, ("hello", "hi")), folder)
    assert s.images == [] and parts.model.image_token_id not in s.input_ids


def test_too_long_is_skipped_or_cut_at_a_turn_border(parts, folder):
    proc = parts.processor
    old = proc.max_length, proc.truncate
    long = record("img.png", ("<image>\nQ", "short"), ("And?", "word " * 200))
    try:
        proc.max_length = 120  # the image (64 tokens) and the first answer fit, not the second
        with pytest.raises(RecordError, match="data.truncate=true cuts") as err:
            proc.training_sample(long, folder)
        assert err.value.reason == "too_long"
        proc.truncate = True
        s = proc.training_sample(long, folder)
        first = proc.training_sample(record("img.png", ("<image>\nQ", "short")), folder)
        assert s.input_ids == first.input_ids  # cut exactly after the first answer
        proc.max_length = 40  # the image itself would be cut: never
        with pytest.raises(RecordError) as err:
            proc.training_sample(record(), folder)
        assert err.value.reason == "too_long"
    finally:
        proc.max_length, proc.truncate = old


def test_bad_records_are_skipped_and_counted_or_raise_in_strict_mode(parts, folder):
    raws = [
        {
            "id": "ok",
            "image": "img.png",
            "conversations": [
                {"from": "human", "value": "<image>\nQ"},
                {"from": "gpt", "value": "A"},
            ],
        },
        {
            "id": "gone",
            "image": "missing.png",
            "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
        },
        {"id": "broken"},
    ]
    (folder / "data.json").write_text(json.dumps(raws))
    src = JsonSource(path=str(folder / "data.json"))
    ds = ConversationDataset([src])
    items = [ds[i] for i in range(3)]
    assert [type(i).__name__ for i in items] == ["RawItem", "RawItem", "Skipped"]
    pad = parts.tokenizer.pad_token_id
    batch = TrainingCollator(parts.processor, pad)(items)
    assert (
        batch["skipped"] == {"missing_image": 1, "no_conversations": 1}
        and batch["num_samples"] == 1
    )
    with pytest.raises(ValueError) as err:
        TrainingCollator(parts.processor, pad, strict=True)(items[:2])
    msg = str(err.value)
    assert (
        "data.json" in msg and "record 1" in msg and "'gone'" in msg and "data.strict=false" in msg
    )
    with pytest.raises(ValueError, match="record 2"):
        ConversationDataset([src], strict=True)[2]


def test_collator_pads_left_or_right(parts, folder):
    a = parts.processor.training_sample(record(), folder)
    b = parts.processor.training_sample(record(None, ("hi", "yo")), folder)
    for side in ("left", "right"):
        batch = PadCollator(parts.tokenizer.pad_token_id, padding_side=side)([a, b, Skipped("x")])
        mask = batch["attention_mask"]
        assert mask.shape[0] == 2 and mask[0].all()
        row = mask[1]
        assert (row[0] == 0) if side == "left" else (row[-1] == 0)
        assert torch.equal(batch["input_ids"][1][row.bool()], torch.tensor(b.input_ids))
        assert len(batch["images"]) == 1


def metaspace_tokenizer():
    """A SentencePiece-style (Llama / Vicuna) tokenizer: Metaspace pre-tokenizer that
    prepends "▁" to the first word of every call, so tokenising a prompt in pieces differs
    from tokenising it whole."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    corpus = [
        "A chat between a user and an assistant. USER: What colour is it? ASSISTANT: green"
    ] * 20
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False)
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", extra_special_tokens=["<image>"],
    )  # fmt: skip


def test_prompts_are_tokenised_whole_as_transformers_does(parts, folder):
    """Ids equal the whole rendered text's (what transformers' processors and the LLaVA code
    compute), with a SentencePiece-style tokenizer too, and the labels are exactly the answer."""
    from mmfw.data.processor import SampleProcessor
    from mmfw.data.templates.separator import SeparatorTemplate

    tok = metaspace_tokenizer()
    template = SeparatorTemplate(system="A chat between a user and an assistant.")
    proc = SampleProcessor(
        tokenizer=tok, template=template, strategy=parts.strategy, counter=lambda layout: 1,
        max_length=512,
    )  # fmt: skip
    rec = record(None, ("What colour is it?", "green"), ("And now?", "red"))
    sample = proc.training_sample(rec, folder)
    text = "".join(s.text for s in template.render(rec.turns))
    whole = tok(text, add_special_tokens=False)["input_ids"]
    assert sample.input_ids == [tok.bos_token_id, *whole]
    apart = [
        i
        for s in template.render(rec.turns)
        for i in tok(s.text, add_special_tokens=False)["input_ids"]
    ]
    assert apart != whole  # the case this guards: a "▁" at every join when tokenised apart
    answers = [t for t in sample.labels if t != IGNORE]
    assert tok.decode(answers).replace(" ", "") == "green</s>red</s>"
    prompt = proc.prompt_sample(rec.turns[:1], [])
    assert prompt.input_ids == [
        tok.bos_token_id,
        *tok("".join(s.text for s in template.prompt(rec.turns[:1])), add_special_tokens=False)[
            "input_ids"
        ],
    ]
