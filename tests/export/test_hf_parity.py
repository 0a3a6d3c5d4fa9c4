"""A trained tiny run exported to transformers' LLaVA / LLaVA-NeXT classes computes what mmfw
computes: logits within 1e-4 and the same greedy generations as its predictions.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from mmfw.export.run_export import export_run
from mmfw.runs import load_run

CASES = {"hf_llava": "llava_run", "hf_llava_next": "llava_next_run"}


def load_hf(folder: Path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(str(folder), trust_remote_code=False)
    processor = AutoProcessor.from_pretrained(str(folder), trust_remote_code=False)
    return model.eval(), processor


def requests_and_rows(run_dir: Path):
    """The run's synthetic benchmark questions (prompt + image) and its prediction rows."""
    run = load_run(run_dir)
    bench = instantiate(run.config.benchmarks.synthetic_magnifier)
    path = run_dir / "eval" / "synthetic_magnifier" / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    requests = bench.requests()
    assert len(rows) == len(requests) > 0
    return run, bench, requests, rows


# LLaVA-NeXT's case trains its own anyres run (~30 s): make test-full runs it; LLaVA's stays in
# the default suite.
@pytest.mark.parametrize(
    "fmt",
    [pytest.param(f, marks=pytest.mark.slow) for f in sorted(CASES)],
)
def test_export_matches_mmfw_logits_and_predictions(fmt, request, tmp_path):
    run_dir = request.getfixturevalue(CASES[fmt])
    out = tmp_path / fmt
    info = export_run(run_dir, fmt, out)
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert json.loads((out / "export.json").read_text())["format"] == fmt
    assert info["baked_position_embeddings"] is (fmt == "hf_llava_next")  # 32-px crops, 64-px ViT
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:  # the llava-hf release names
        names = list(f.keys())
    assert all(n.startswith(("vision_tower.vision_model.", "language_model.model.",
                             "language_model.lm_head.", "multi_modal_projector.", "image_newline"))
               for n in names), names  # fmt: skip
    hf, processor = load_hf(out)
    expected = (
        "LlavaNextForConditionalGeneration"
        if fmt == "hf_llava_next"
        else "LlavaForConditionalGeneration"
    )
    assert type(hf).__name__ == expected

    run, bench, requests, rows = requests_and_rows(run_dir)
    for req, row in zip(requests[:6], rows[:6], strict=True):
        # The same prompt text gives the same ids through transformers' processor.
        enc = processor(images=req.images, text=row["prompt"], return_tensors="pt")
        sample = run.processor.prompt_sample(req.turns, req.images)
        assert enc["input_ids"][0].tolist() == sample.input_ids
        ids = torch.tensor([sample.input_ids])
        with torch.no_grad():
            theirs = hf(**enc).logits
            ours = run.model(
                ids, torch.ones_like(ids), images=sample.images, layouts=sample.layouts
            ).logits
        assert (theirs - ours).abs().max().item() < 1e-4

    # Greedy generations, batched and left-padded, equal the predictions' raw `output`.
    processor.tokenizer.padding_side = "left"
    enc = processor(
        images=[r.images[0] for r in requests], text=[row["prompt"] for row in rows],
        return_tensors="pt", padding=True,
    )  # fmt: skip
    with torch.no_grad():
        new = hf.generate(**enc, max_new_tokens=bench.max_new_tokens, do_sample=False)
    outputs = processor.batch_decode(new[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert outputs == [row["output"] for row in rows]
    assert len({row["output"] for row in rows}) >= 1


def test_chat_template_renders_the_training_prompt(llava_run, tmp_path):
    """``apply_chat_template`` of the export writes exactly the prompt mmfw generates from."""
    out = tmp_path / "hf"
    export_run(llava_run, "hf_llava", out)
    _, processor = load_hf(out)
    _, _, requests, rows = requests_and_rows(llava_run)
    question = requests[0].turns[0].text.split("\n", 1)[1]
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
    ]
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == rows[0]["prompt"]
