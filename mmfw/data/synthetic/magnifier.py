"""The "magnifier" task: a small object in a larger cluttered canvas, and a question about it.

Written in the LLaVA conversation JSON format (train/val/test) plus a multiple-choice test set
in VLMEvalKit TSV format (``test_mc.tsv``), so the same readers serve real and synthetic data.
How small the object is relative to the canvas decides which resolution strategies can see it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmfw.data.question_format import LETTERS, format_multiple_choice

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
    "cyan": (40, 200, 210),
    "pink": (240, 120, 190),
}
SHAPES = ("square", "circle", "triangle", "cross")
PATTERNS = ("horizontal stripes", "vertical stripes", "checkerboard", "diagonal stripes")
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")
# Aspect classes of the whole image (width / height): >= 2.5, >= 1.5, between, <= 2/3, <= 0.4.
ASPECTS = ("very wide", "wide", "square", "tall", "very tall")
ATTRIBUTES = ("colour", "shape", "pattern", "position", "quarter_colour", "aspect")
QUESTIONS = {
    "colour": "What colour is the small object?",
    "shape": "What shape is the small object?",
    "pattern": "What pattern is on the small square?",
    "position": "In which quarter of the image is the small object?",
    "quarter_colour": "What colour is the small object in the {} quarter?",
    "aspect": "Is the image wide, tall or square?",
}
# A conversational reply around the short answer (LLaVA-1.5's long-form vs short-answer data).
LONG_ANSWERS = {
    "colour": "The small object in the picture is {}.",
    "shape": "The small object in the picture is a {}.",
    "pattern": "The small square in the picture has {}.",
    "position": "The small object is in the {} of the picture.",
    "quarter_colour": "The small object there is {}.",
    "aspect": "The image is {}.",
}
SPLITS = ("train", "val", "test")
QUARTERED = ("position", "quarter_colour")  # attributes that place objects in quarters


class MagnifierGenerator:
    """Deterministic generator of the magnifier task (same keys + seed → same files).

    Yaml keys:
      canvas: side of the square image in pixels.
      object_size: side of the target object in pixels (the "needle").
      sizes: null for square ``canvas`` images, else a list of [width, height] drawn per
        image (varied aspect ratios; ``canvas`` is then unused).
      attribute: what the question asks: colour | shape | pattern | position |
        quarter_colour. Colour survives area downsampling; pattern (two-colour texture with
        equal means) does not; position (which quarter holds the object) needs the 2-D layout
        of the image tokens; quarter_colour puts one small square of a different colour in
        every quarter and asks the colour of the one in a named quarter (every region of the
        image must survive the connector, with its place); aspect asks the shape of the whole
        image (very wide >= 2.5:1, wide >= 1.5:1, square, tall, very tall; the answers are the
        classes ``sizes`` holds): the crop grid itself, which a flattened token map of unknown
        row width does not show.
      colours: colour names to draw the target from (also the answers for ``colour``).
      shapes: target shapes (answers for ``shape``; ``pattern`` always uses squares).
      clutter: number of large, muted distractor shapes.
      clutter_size: [min, max] side of distractors in pixels.
      noise: standard deviation of per-pixel Gaussian noise.
      background_jitter: ± per-channel jitter of the gray background per image.
      num_train, num_val, num_test: samples per split.
      mc_fraction: share of training samples asked as multiple choice (answer = a letter);
        the rest are open questions (answer = the word).
      long_answer_fraction: share of the open training questions answered with a sentence
        ("The small object in the picture is red.") instead of the bare word.
      distractor_fraction: share of training samples whose image is shown among
        1..``max_distractors`` other training images, asked "In Image X, ..." (mPLUG-Owl3's
        Distractor Resistance form, so a model can learn to find the image a question is about).
      max_distractors: the most distractor images in such a sample.
      format_prompt: appended (after a newline) to the open training questions that have the
        short answer, e.g. LLaVA-1.5's "Answer the question using a single word or phrase.";
        null: none, so short and long answers follow the same question.
      num_options: options per multiple-choice question.
      shuffle_options: list the options in random order (the model must match the answer to
        its letter); false keeps the order of the answer list, so each answer has a fixed letter.
      seed: base random seed.
    """

    def __init__(
        self,
        *,
        canvas: int = 64,
        sizes: list[list[int]] | None = None,
        object_size: int = 6,
        attribute: str = "colour",
        colours: list[str] | tuple[str, ...] = ("red", "green", "blue", "yellow"),
        shapes: list[str] | tuple[str, ...] = ("square",),
        clutter: int = 3,
        clutter_size: list[int] | tuple[int, int] = (10, 20),
        noise: float = 8.0,
        background_jitter: int = 0,
        num_train: int = 4000,
        num_val: int = 200,
        num_test: int = 200,
        mc_fraction: float = 0.5,
        long_answer_fraction: float = 0.0,
        format_prompt: str | None = None,
        distractor_fraction: float = 0.0,
        max_distractors: int = 3,
        num_options: int = 4,
        shuffle_options: bool = True,
        seed: int = 0,
    ) -> None:
        if attribute not in ATTRIBUTES:
            raise ValueError(f"synthetic.attribute={attribute!r} is not one of {ATTRIBUTES}")
        unknown = [c for c in colours if c not in COLOURS]
        if unknown:
            raise ValueError(f"synthetic.colours has unknown {unknown}; known: {sorted(COLOURS)}")
        bad_shapes = [s for s in shapes if s not in SHAPES]
        if bad_shapes:
            raise ValueError(f"synthetic.shapes has unknown {bad_shapes}; known: {SHAPES}")
        sides = [tuple(int(v) for v in wh) for wh in sizes] if sizes else [(canvas, canvas)]
        if any(len(wh) != 2 for wh in sides):
            raise ValueError(f"synthetic.sizes={sizes} must be a list of [width, height]")
        if (
            not 1
            <= object_size
            <= min(min(wh) for wh in sides) // (2 if attribute in QUARTERED else 1)
        ):
            raise ValueError(
                f"synthetic.object_size={object_size} must fit the smallest canvas side "
                f"(half of it for attribute={'|'.join(QUARTERED)})"
            )
        if attribute == "aspect" and len({aspect_of(*wh) for wh in sides}) < 2:
            raise ValueError(
                "synthetic.attribute=aspect needs synthetic.sizes of at least two aspect classes "
                f"({', '.join(ASPECTS)}), e.g. [[64, 32], [32, 64]]"
            )
        if attribute == "quarter_colour" and len(set(colours)) < len(QUADRANTS):
            raise ValueError("synthetic.colours needs 4 colours for attribute=quarter_colour")
        if not 0.0 <= long_answer_fraction <= 1.0:
            raise ValueError(
                f"synthetic.long_answer_fraction={long_answer_fraction} is not in [0, 1]"
            )
        answers = self._answers_for(attribute, list(colours), list(shapes), sides)
        if not 2 <= num_options <= min(len(answers), len(LETTERS)):
            raise ValueError(
                f"synthetic.num_options={num_options} needs 2..{min(len(answers), len(LETTERS))} "
                f"answers for attribute {attribute!r}"
            )
        self.params: dict[str, Any] = {
            "canvas": canvas,
            "sizes": [list(wh) for wh in sides] if sizes else None,
            "object_size": object_size,
            "attribute": attribute,
            "colours": list(colours),
            "shapes": list(shapes),
            "clutter": clutter,
            "clutter_size": list(clutter_size),
            "noise": float(noise),
            "background_jitter": background_jitter,
            "num_train": num_train,
            "num_val": num_val,
            "num_test": num_test,
            "mc_fraction": float(mc_fraction),
            "long_answer_fraction": float(long_answer_fraction),
            "format_prompt": format_prompt,
            "distractor_fraction": float(distractor_fraction),
            "max_distractors": int(max_distractors),
            "num_options": num_options,
            "shuffle_options": bool(shuffle_options),
            "seed": seed,
        }
        self.answers = answers

    @staticmethod
    def _answers_for(
        attribute: str, colours: list[str], shapes: list[str], sides: list[tuple[int, ...]]
    ) -> list[str]:
        present = {aspect_of(*wh) for wh in sides}
        return {
            "colour": colours,
            "shape": shapes,
            "pattern": list(PATTERNS),
            "position": list(QUADRANTS),
            "quarter_colour": colours,
            "aspect": [a for a in ASPECTS if a in present],
        }[attribute]

    # 2: sizes, position, long answers, format prompt, distractors and test_open.json
    # 3: with sizes, the test rows' category is the image size (WxH); quarter_colour
    VERSION = 3

    @property
    def name(self) -> str:
        return "magnifier"

    @property
    def chance(self) -> float:
        """Accuracy of a uniform guess on the multiple-choice test set."""
        return 1.0 / self.params["num_options"]

    # -- drawing -------------------------------------------------------------------------------

    def _draw(self, rng: np.random.Generator) -> tuple[np.ndarray, str, str]:
        """Pixels, answer and question of one sample."""
        p = self.params
        if p["sizes"]:
            width, height = p["sizes"][rng.integers(len(p["sizes"]))]
        else:
            width = height = p["canvas"]
        base = 128 + rng.integers(-p["background_jitter"], p["background_jitter"] + 1, size=3)
        img = np.empty((height, width, 3), dtype=np.float32)
        img[:] = base
        lo, hi = p["clutter_size"]
        for _ in range(p["clutter"]):
            size = int(rng.integers(lo, hi + 1))
            colour = np.array(COLOURS[p["colours"][rng.integers(len(p["colours"]))]], np.float32)
            muted = 0.35 * colour + 0.65 * base  # large and desaturated: not the target
            shape = SHAPES[rng.integers(len(SHAPES))]
            self._paste(img, shape_mask(shape, size), muted, rng)
        size = p["object_size"]
        question = QUESTIONS[p["attribute"]]
        colour_name = p["colours"][rng.integers(len(p["colours"]))]
        colour = np.array(COLOURS[colour_name], np.float32)
        if p["attribute"] == "pattern":
            answer = PATTERNS[rng.integers(len(PATTERNS))]
            texture = pattern_texture(answer, size)[..., None]
            patch = texture * colour + (1 - texture) * 255.0
            self._paste(img, np.ones((size, size), bool), patch, rng)
        elif p["attribute"] == "position":
            answer = QUADRANTS[rng.integers(len(QUADRANTS))]
            self._paste(_quarter(img, answer), np.ones((size, size), bool), colour, rng)
        elif p["attribute"] == "quarter_colour":
            names = [p["colours"][i] for i in rng.permutation(len(p["colours"]))[:4]]
            for where, name in zip(QUADRANTS, names, strict=True):
                value = np.array(COLOURS[name], np.float32)
                self._paste(_quarter(img, where), np.ones((size, size), bool), value, rng)
            target = int(rng.integers(len(QUADRANTS)))
            answer, question = names[target], question.format(QUADRANTS[target])
        elif p["attribute"] == "aspect":
            self._paste(img, np.ones((size, size), bool), colour, rng)
            answer = aspect_of(width, height)
        else:
            shape = p["shapes"][rng.integers(len(p["shapes"]))]
            self._paste(img, shape_mask(shape, size), colour, rng)
            answer = colour_name if p["attribute"] == "colour" else shape
        img += rng.normal(0.0, p["noise"], size=img.shape)
        return np.clip(img, 0, 255).round().astype(np.uint8), answer, question

    @staticmethod
    def _paste(
        img: np.ndarray, mask: np.ndarray, value: np.ndarray, rng: np.random.Generator
    ) -> None:
        h, w = mask.shape
        top = int(rng.integers(0, img.shape[0] - h + 1))
        left = int(rng.integers(0, img.shape[1] - w + 1))
        region = img[top : top + h, left : left + w]
        fill = np.broadcast_to(value, region.shape)
        region[mask] = fill[mask]

    def _options(self, answer: str, rng: np.random.Generator) -> list[str]:
        others = [a for a in self.answers if a != answer]
        picked = list(rng.choice(others, size=self.params["num_options"] - 1, replace=False))
        options = [answer, *picked]
        if self.params["shuffle_options"]:
            rng.shuffle(options)
        else:
            options.sort(key=self.answers.index)
        return [str(o) for o in options]

    def _chance(self, key: str, rng: np.random.Generator) -> bool:
        """True with probability ``params[key]``; no draw at 0, so datasets that do not use an
        option stay identical to earlier versions."""
        fraction = self.params[key]
        return fraction > 0 and rng.random() < fraction

    def _distractors(
        self, rel: str, text: str, split: str, i: int, rng: np.random.Generator
    ) -> tuple[list[str], str]:
        """The sample's image among 1..max_distractors earlier images, asked in the Distractor
        Resistance form "Image 1: <image> Image 2: <image>\nIn Image X, {question}"."""
        k = int(rng.integers(1, self.params["max_distractors"] + 1))
        others = [
            f"images/{split}/{j:06d}.png" for j in rng.choice(i, size=min(k, i), replace=False)
        ]
        target = int(rng.integers(len(others) + 1))
        images = others[:target] + [rel] + others[target:]
        listing = " ".join(f"Image {n + 1}: <image>" for n in range(len(images)))
        return images, f"{listing}\nIn Image {target + 1}, {text}"

    # -- writing -------------------------------------------------------------------------------

    def generate(self, out_dir: str | Path) -> None:
        """Write images/, train.json, val.json, test.json, test_mc.tsv, test_open.json (the
        test questions asked open) and meta.json."""
        out = Path(out_dir)
        for split_id, split in enumerate(SPLITS):
            rng = np.random.default_rng([self.params["seed"], split_id])
            n = self.params[f"num_{split}"]
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            records, mc_rows, open_records = [], [], []
            for i in range(n):
                pixels, answer, question = self._draw(rng)
                rel = f"images/{split}/{i:06d}.png"
                Image.fromarray(pixels).save(out / rel)
                as_mc = split != "train" or rng.random() < self.params["mc_fraction"]
                options = self._options(answer, rng) if as_mc else []
                if as_mc:
                    text = format_multiple_choice(question, options)
                    reply = LETTERS[options.index(answer)]
                else:
                    text, reply = question, answer
                    if split == "train" and self._chance("long_answer_fraction", rng):
                        reply = LONG_ANSWERS[self.params["attribute"]].format(answer)
                    elif split == "train" and self.params["format_prompt"]:
                        text = f"{question}\n{self.params['format_prompt']}"
                image, human = rel, f"<image>\n{text}"
                if split == "train" and i and self._chance("distractor_fraction", rng):
                    image, human = self._distractors(rel, text, split, i, rng)
                records.append(
                    {
                        "id": f"{split}-{i:06d}",
                        "image": image,
                        "conversations": [
                            {"from": "human", "value": human},
                            {"from": "gpt", "value": reply},
                        ],
                    }
                )
                if split == "test":
                    row = {
                        "index": i,
                        "question": question,
                        "answer": LETTERS[options.index(answer)],
                    }
                    row.update({LETTERS[k]: o for k, o in enumerate(options)})
                    # With varied sizes the category is the size, so the report's per-category
                    # figure shows accuracy per crop grid.
                    category = (
                        f"{pixels.shape[1]}x{pixels.shape[0]}"
                        if self.params["sizes"]
                        else self.params["attribute"]
                    )
                    row.update({"image_path": rel, "category": category})
                    mc_rows.append(row)
                    open_records.append(_open_record(i, rel, question, answer))
            (out / f"{split}.json").write_text(json.dumps(records, indent=0))
            if mc_rows:
                letters = list(LETTERS[: self.params["num_options"]])
                _write_tsv(out / "test_mc.tsv", mc_rows, letters)
                (out / "test_open.json").write_text(json.dumps(open_records, indent=0))
        meta = {
            "generator": "magnifier",
            "params": self.params,
            "answers": self.answers,
            "chance": self.chance,
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=2))


def aspect_of(width: int, height: int) -> str:
    """The aspect class (``ASPECTS``) of a width x height image."""
    ratio = width / height
    if ratio >= 2.5:
        return "very wide"
    if ratio >= 1.5:
        return "wide"
    if ratio <= 0.4:
        return "very tall"
    if ratio <= 2 / 3:
        return "tall"
    return "square"


def _quarter(img: np.ndarray, name: str) -> np.ndarray:
    """The view of ``img`` (H, W, 3) covering the quarter ``name`` ("top left", ...)."""
    height, width = img.shape[:2]
    rows = (height // 2, height) if name.startswith("bottom") else (0, height // 2)
    cols = (width // 2, width) if name.endswith("right") else (0, width // 2)
    return img[rows[0] : rows[1], cols[0] : cols[1]]


def _open_record(i: int, rel: str, question: str, answer: str) -> dict:
    """The test question asked open (no options, no format prompt), answer = the word."""
    return {
        "id": f"test-open-{i:06d}",
        "image": rel,
        "conversations": [
            {"from": "human", "value": f"<image>\n{question}"},
            {"from": "gpt", "value": answer},
        ],
    }


def _write_tsv(path: Path, rows: list[dict], letters: list[str]) -> None:
    fields = ["index", "question", *letters, "answer", "image_path", "category"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def shape_mask(shape: str, size: int) -> np.ndarray:
    """Boolean ``size × size`` mask of a filled shape."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c = size / 2.0
    if shape == "square":
        return np.ones((size, size), bool)
    if shape == "circle":
        return (yy - c) ** 2 + (xx - c) ** 2 <= c**2
    if shape == "triangle":
        return np.abs(xx - c) <= yy / 2.0
    if shape == "cross":
        arm = max(1.0, size / 6.0)
        return (np.abs(xx - c) <= arm) | (np.abs(yy - c) <= arm)
    raise ValueError(f"unknown shape {shape!r}")


def pattern_texture(name: str, size: int) -> np.ndarray:
    """``size × size`` texture in {0, 1} with mean ½ (so downsampling averages it away)."""
    yy, xx = np.mgrid[0:size, 0:size]
    if name == "horizontal stripes":
        return (yy % 2).astype(np.float32)
    if name == "vertical stripes":
        return (xx % 2).astype(np.float32)
    if name == "checkerboard":
        return ((xx + yy) % 2).astype(np.float32)
    return (((xx + yy) // 2) % 2).astype(np.float32)
