"""mPLUG-Owl3's Distractor Resistance: a question's image among N-1 images of other questions.

Sample for (question, N): N images, the question's own at a position X drawn from the seed,
N-1 distractors drawn (without replacement while enough exist) from the other questions'
images; prompt "Image 1: <image> Image 2: <image> ... In Image X, {question}". Deterministic:
the draw depends only on (seed, question index, N).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from mmfw.data.formats.vlmeval_tsv import MCQuestion
from mmfw.data.templates.base import IMAGE_PLACEHOLDER


@dataclass
class DistractorSample:
    question: MCQuestion
    num_images: int
    target: int  # 1-based position of the question's own image
    images: list
    text: str  # the question part of the prompt, placeholders inline


def _rng(seed: int, index: str, n: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{index}|{n}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def build(questions: list[MCQuestion], num_images: int, seed: int) -> list[DistractorSample]:
    """One sample per question with exactly one image (others cannot be placed)."""
    if num_images < 1:
        raise ValueError(f"benchmark.num_images has {num_images}: every count must be >= 1")
    usable = [q for q in questions if len(q.images) == 1]
    out = []
    for q in usable:
        rng = _rng(seed, q.index, num_images)
        others = [o.images[0] for o in usable if o.index != q.index]
        k = num_images - 1
        if k and not others:
            raise ValueError("distractors need at least two questions with an image")
        picked = (
            rng.sample(others, k) if k <= len(others) else [rng.choice(others) for _ in range(k)]
        )
        target = rng.randrange(num_images) + 1
        images = picked[: target - 1] + [q.images[0]] + picked[target - 1 :]
        listing = " ".join(f"Image {i + 1}: {IMAGE_PLACEHOLDER}" for i in range(num_images))
        text = f"{listing}\nIn Image {target}, {q.question}"
        out.append(DistractorSample(q, num_images, target, images, text))
    return out
