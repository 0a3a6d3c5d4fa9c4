"""Synthetic data categories for mixture studies (MM1.5's α): one generator, five categories.

Each category is a small visual skill a tiny model can learn on a CPU, written in the real
formats (LLaVA JSON train/val/test, VLMEvalKit multiple-choice ``test_mc.tsv``):

- ``text_rich``: a short word rendered large at a fixed place; "What word is written?"
- ``counting``: 1–4 squares of one colour scattered on the canvas; "How many squares?"
- ``math``: two rendered digits with a plus sign between; "What is the sum?"
- ``spatial``: a red and a blue bar, one in the top half, one in the bottom half;
  "Is the red bar above or below the blue bar?"
- ``multi_image``: three images, one of them shows a red square, the others blue;
  "Which image shows the red square?" (one ``<image>`` per image, in order; the answer is
  the image's number).

Deterministic by seed; tasks were chosen at the easy end of what the tiny models learn (see
README "Data" for the measured accuracies).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mmfw.data.question_format import LETTERS, format_multiple_choice
from mmfw.data.synthetic.magnifier import COLOURS, SPLITS, _write_tsv

CATEGORIES = ("text_rich", "counting", "math", "spatial", "multi_image")
WORDS = ("CAT", "SUN", "BOX", "MAP")
QUESTIONS = {
    "text_rich": "What word is written in the image?",
    "counting": "How many squares are there in the image?",
    "math": "What is the sum of the two numbers in the image?",
    "spatial": "Is the red bar above or below the blue bar?",
    "multi_image": "Which image shows the red square?",
}


class CategoryGenerator:
    """Deterministic generator of one synthetic category (same keys + seed → same files).

    Yaml keys:
      category: text_rich | counting | math | spatial | multi_image.
      canvas: side of each square image in pixels.
      noise: standard deviation of per-pixel Gaussian noise.
      num_train, num_val, num_test: samples per split.
      mc_fraction: share of training samples asked as multiple choice (answer = a letter).
      num_options: options per multiple-choice question (null: all of the category's answers).
      shuffle_options: list the options in random order; false (default) keeps the answer
        order, so each answer has a fixed letter (tiny from-scratch LLMs do not learn to match
        a shuffled list to its letter within minutes, see the tiny_llava recipe).
      seed: base random seed.
    """

    def __init__(
        self,
        *,
        category: str = "counting",
        canvas: int = 64,
        noise: float = 6.0,
        num_train: int = 2000,
        num_val: int = 128,
        num_test: int = 200,
        mc_fraction: float = 0.5,
        num_options: int | None = None,
        shuffle_options: bool = False,
        seed: int = 0,
    ) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"synthetic.category={category!r} is not one of {CATEGORIES}")
        self.answers = self._answers_for(category)
        num_options = len(self.answers) if num_options is None else num_options
        if not 2 <= num_options <= len(self.answers):
            raise ValueError(
                f"synthetic.num_options={num_options} needs 2..{len(self.answers)} for {category}"
            )
        if canvas < 32:
            raise ValueError(f"synthetic.canvas={canvas} must be >= 32")
        self.params: dict[str, Any] = {
            "category": category,
            "canvas": int(canvas),
            "noise": float(noise),
            "num_train": int(num_train),
            "num_val": int(num_val),
            "num_test": int(num_test),
            "mc_fraction": float(mc_fraction),
            "num_options": int(num_options),
            "shuffle_options": bool(shuffle_options),
            "seed": int(seed),
        }

    @staticmethod
    def _answers_for(category: str) -> list[str]:
        return {
            "text_rich": list(WORDS),
            "counting": ["1", "2", "3", "4"],
            "math": [str(s) for s in range(5)],  # digits 0..2: sums 0..4
            "spatial": ["above", "below"],
            "multi_image": ["1", "2", "3"],
        }[category]

    # Part of the cache key: bump it whenever drawing changes, or old generated data is reused.
    VERSION = 2

    @property
    def name(self) -> str:
        return f"category_{self.params['category']}_v{self.VERSION}"

    @property
    def chance(self) -> float:
        return 1.0 / self.params["num_options"]

    # -- drawing -------------------------------------------------------------------------------

    def _canvas(self) -> np.ndarray:
        side = self.params["canvas"]
        return np.full((side, side, 3), 128.0, np.float32)

    def _finish(self, img: np.ndarray, rng: np.random.Generator) -> Image.Image:
        img = img + rng.normal(0.0, self.params["noise"], size=img.shape)
        return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8))

    def _text(self, text: str, rng: np.random.Generator) -> Image.Image:
        side = self.params["canvas"]
        img = Image.fromarray(self._canvas().astype(np.uint8))
        font = ImageFont.load_default(size=side // 3)
        draw = ImageDraw.Draw(img)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        at = ((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top)
        draw.text(at, text, fill=(0, 0, 0), font=font)
        return self._finish(np.asarray(img, np.float32), rng)

    def _square(self, img: np.ndarray, colour: str, top: int, left: int, size: int) -> None:
        img[top : top + size, left : left + size] = COLOURS[colour]

    @staticmethod
    def _square_rect(img: np.ndarray, colour: str, top: int, left: int, h: int, w: int) -> None:
        img[top : top + h, left : left + w] = COLOURS[colour]

    def draw(self, rng: np.random.Generator) -> tuple[list[Image.Image], str]:
        """The images of one sample and its answer."""
        cat, side = self.params["category"], self.params["canvas"]
        size = side // 6
        if cat == "text_rich":
            word = WORDS[rng.integers(len(WORDS))]
            return [self._text(word, rng)], word
        if cat == "math":
            a, b = (int(x) for x in rng.integers(0, 3, size=2))
            return [self._text(f"{a}+{b}", rng)], str(a + b)
        if cat == "counting":
            n = int(rng.integers(1, 5))
            img, cells = self._canvas(), rng.permutation(9)[:n]
            step = side // 3
            for c in cells:  # one square per cell of a 3x3 grid, jittered: they never touch
                top = int(c // 3 * step + rng.integers(0, step - size))
                left = int(c % 3 * step + rng.integers(0, step - size))
                self._square(img, "green", top, left, size)
            return [self._finish(img, rng)], str(n)
        if cat == "spatial":
            # Above / below, with wide bars: red left / right of blue with 16 px squares stayed
            # at chance after 800 steps of the tiny recipe (a tiny ViT mixes an image's tokens,
            # so a small square's position washes out); wide bars keep whole rows of one colour,
            # and image tokens are in raster order, so "above" is "earlier in the sequence".
            img, red_up = self._canvas(), bool(rng.integers(2))
            half, bar = side // 2, side // 4
            for colour, up in (("red", red_up), ("blue", not red_up)):
                top = int(rng.integers(0, half - bar + 1)) + (0 if up else half)
                width = int(rng.integers(side // 2, side + 1))
                self._square_rect(
                    img, colour, top, int(rng.integers(0, side - width + 1)), bar, width
                )
            return [self._finish(img, rng)], "above" if red_up else "below"
        n = 3
        target = int(rng.integers(n))
        images = []
        for k in range(n):
            img = self._canvas()
            colour = "red" if k == target else "blue"
            top, left = (int(v) for v in rng.integers(0, side - 2 * size, size=2))
            self._square(img, colour, top, left, 2 * size)
            images.append(self._finish(img, rng))
        return images, str(target + 1)

    def _options(self, answer: str, rng: np.random.Generator) -> list[str]:
        others = [a for a in self.answers if a != answer]
        k = self.params["num_options"] - 1
        options = [answer, *(str(o) for o in rng.choice(others, size=k, replace=False))]
        if self.params["shuffle_options"]:
            rng.shuffle(options)
        else:
            options.sort(key=self.answers.index)
        return options

    # -- writing -------------------------------------------------------------------------------

    def generate(self, out_dir: str | Path) -> None:
        """Write images/, train.json, val.json, test.json, test_mc.tsv and meta.json."""
        out = Path(out_dir)
        cat = self.params["category"]
        question = QUESTIONS[cat]
        for split_id, split in enumerate(SPLITS):
            rng = np.random.default_rng([self.params["seed"], split_id, 17])
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            records, rows = [], []
            for i in range(self.params[f"num_{split}"]):
                images, answer = self.draw(rng)
                rels = []
                for k, img in enumerate(images):
                    rel = f"images/{split}/{i:06d}_{k}.png"
                    img.save(out / rel)
                    rels.append(rel)
                as_mc = split != "train" or rng.random() < self.params["mc_fraction"]
                options = self._options(answer, rng) if as_mc else []
                text = format_multiple_choice(question, options) if as_mc else question
                reply = LETTERS[options.index(answer)] if as_mc else answer
                # The placeholders lead, in image order, as the multiple-choice benchmark asks.
                prefix = "<image>" * len(rels) + "\n"
                records.append(
                    {
                        "id": f"{cat}-{split}-{i:06d}",
                        "image": rels if len(rels) > 1 else rels[0],
                        "conversations": [
                            {"from": "human", "value": prefix + text},
                            {"from": "gpt", "value": reply},
                        ],
                    }
                )
                if split == "test":
                    row = {"index": i, "question": question, "answer": reply, "category": cat}
                    row.update({LETTERS[k]: o for k, o in enumerate(options)})
                    row["image_path"] = json.dumps(rels) if len(rels) > 1 else rels[0]
                    rows.append(row)
            (out / f"{split}.json").write_text(json.dumps(records, indent=0))
            if rows:
                letters = list(LETTERS[: max(len(r) - 5 for r in rows)])
                _write_tsv(out / "test_mc.tsv", rows, letters)
        meta = {"generator": self.name, "params": self.params, "answers": self.answers}
        (out / "meta.json").write_text(json.dumps({**meta, "chance": self.chance}, indent=2))
