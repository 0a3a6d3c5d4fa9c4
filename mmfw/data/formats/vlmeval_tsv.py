"""VLMEvalKit's multiple-choice TSV (MMBench and friends): one question per row.

Columns: ``index, question, A, B, C, D, ..., answer`` plus the image as base64 in ``image``
or as a path in ``image_path``; optional ``hint``, ``category``, ``l2-category``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mmfw.eval.protocols.multiple_choice import LETTERS


@dataclass
class MCQuestion:
    """One multiple-choice question with its image(s) already decoded."""

    index: str
    question: str
    options: dict[str, str]
    answer: str | None
    images: list[Image.Image] = field(default_factory=list)
    hint: str | None = None
    category: str | None = None


def _blank(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().lower() == "nan"


def read_mc_tsv(path: str | Path, image_root: str | Path | None = None) -> list[MCQuestion]:
    """Questions of a TSV; errors name the file, the row and the column."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark file {path} does not exist (check benchmark.path)")
    root = Path(image_root) if image_root else path.parent
    csv.field_size_limit(sys.maxsize)  # base64 images are long fields
    questions = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        cols = reader.fieldnames or []
        for needed in ("index", "question", "A", "B"):
            if needed not in cols:
                raise ValueError(f"{path}: column {needed!r} is missing (found {cols})")
        for rowno, row in enumerate(reader, 2):
            options = {k: row[k] for k in LETTERS if k in row and not _blank(row[k])}
            try:
                images = _images(row, root)
            except Exception as e:  # noqa: BLE001 - any decode failure names the row
                raise ValueError(f"{path}:{rowno}: cannot read the image ({e})") from e
            questions.append(
                MCQuestion(
                    index=row["index"],
                    question=row["question"],
                    options=options,
                    answer=None if _blank(row.get("answer")) else row["answer"].strip(),
                    images=images,
                    hint=None if _blank(row.get("hint")) else row["hint"],
                    category=row.get("category"),
                )
            )
    return questions


def _images(row: dict, root: Path) -> list[Image.Image]:
    if not _blank(row.get("image")):
        img = Image.open(io.BytesIO(base64.b64decode(row["image"])))
        img.load()
        return [img]
    if not _blank(row.get("image_path")):
        value = row["image_path"].strip()
        # Multi-image rows (VLMEvalKit) list their paths: ["a.png", "b.png"].
        paths = json.loads(value.replace("'", '"')) if value.startswith("[") else [value]
        images = []
        for rel in paths:
            img = Image.open(root / rel)
            img.load()
            images.append(img)
        return images
    return []
