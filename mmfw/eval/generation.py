"""Batched greedy generation for evaluation: left padding, KV cache, stop strings.

Each prompt is tokenised alone and the batch is left-padded, so a prompt's tokens, its
position ids (from the attention mask) and its images are the same at any batch size: the
predictions of ``batch_size=1`` and ``batch_size=8`` are identical (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from mmfw.data.collate import PadCollator
from mmfw.data.processor import SampleProcessor
from mmfw.data.templates.base import Turn
from mmfw.models.vlm import VisionLanguageModel


@dataclass
class Generated:
    """One answer: ``prompt`` is the rendered prompt text (images as ``<image>``), ``output``
    the raw generated text, ``text`` the answer cut at the first stop string."""

    prompt: str
    output: str
    text: str


def prompt_text(processor: SampleProcessor, turns: list[Turn]) -> str:
    return "".join(segment.text for segment in processor.template.prompt(turns))


def cut(text: str, stops: list[str]) -> str:
    """``text`` up to the first of ``stops`` (empty strings ignored), stripped."""
    end = len(text)
    for stop in stops:
        if stop.strip() and stop in text:
            end = min(end, text.index(stop))
    return text[:end].strip()


def generate(
    model: VisionLanguageModel,
    processor: SampleProcessor,
    prompts: list[tuple[list[Turn], list[Image.Image]]],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    stop: list[str] | None = None,
    use_cache: bool = True,
    synced: bool = False,
) -> list[Generated]:
    """Greedy answers to (turns, images) prompts. ``stop``: strings that end an answer besides
    the template's own; ``synced``: every rank keeps stepping until all are done (sharded
    models, where each forward is a collective)."""
    tok = processor.tokenizer
    collate = PadCollator(tok.pad_token_id, padding_side="left")
    device = next(model.parameters()).device
    stops = [processor.template.stop, *(stop or [])]
    out: list[Generated] = []
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
                use_cache=use_cache,
                synced=synced,
            )
            for (turns, _), row in zip(chunk, new, strict=True):
                text = tok.decode(row.tolist(), skip_special_tokens=True)
                out.append(Generated(prompt_text(processor, turns), text, cut(text, stops)))
    finally:
        model.train(was_training)
    return out
