"""Batched greedy generation for evaluation (left padding, KV cache)."""

from __future__ import annotations

from PIL import Image

from mmfw.data.collate import PadCollator
from mmfw.data.processor import SampleProcessor
from mmfw.data.templates.base import Turn
from mmfw.models.vlm import VisionLanguageModel


def generate_answers(
    model: VisionLanguageModel,
    processor: SampleProcessor,
    prompts: list[tuple[list[Turn], list[Image.Image]]],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 16,
) -> list[str]:
    """The model's answer to each (turns, images) prompt, cut at the template's stop text."""
    tok = processor.tokenizer
    collate = PadCollator(tok.pad_token_id, padding_side="left")
    device = next(model.parameters()).device
    stop = processor.template.stop
    answers: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            batch = collate([processor.prompt_sample(turns, images) for turns, images in chunk])
            new = model.generate(
                batch["input_ids"].to(device),
                batch["attention_mask"].to(device),
                [img.to(device) for img in batch["images"]],
                batch["layouts"],
                max_new_tokens=max_new_tokens,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
            for row in new:
                text = tok.decode(row.tolist(), skip_special_tokens=True)
                answers.append((text.split(stop)[0] if stop.strip() else text).strip())
    finally:
        model.train(was_training)
    return answers
