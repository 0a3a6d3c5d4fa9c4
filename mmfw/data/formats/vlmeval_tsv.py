"""VLMEvalKit's multiple-choice TSV (MMBench and friends): one question per row.

Columns: ``index, question, A, B, C, D, ..., answer`` plus the image as base64 in ``image``
or as a path in ``image_path``; optional ``hint``, ``category``, ``l2-category``.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mmfw.data.question_format import LETTERS


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


class RowProblems:
    """Rows a benchmark reader could not use: counted by reason with the first example, so a
    benchmark reports them (``skipped_rows`` in metrics.json) instead of dropping them."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.examples.setdefault(reason, where)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def summary(self) -> str:
        return "; ".join(
            f"{reason} x{n} (e.g. {self.examples[reason]})" for reason, n in self.counts.items()
        )


def _report(
    problems: RowProblems | None, path: Path, rowno: int, reason: str, message: str
) -> None:
    """Raise naming file and row, or count the row in ``problems``."""
    if problems is None:
        raise ValueError(f"{path}:{rowno}: {message}")
    problems.add(reason, f"{path.name}:{rowno}: {message}")


def _rows(path: Path, needed: tuple[str, ...]):
    if not path.exists():
        raise FileNotFoundError(f"benchmark file {path} does not exist (check benchmark.path)")
    csv.field_size_limit(sys.maxsize)  # base64 images are long fields
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        cols = reader.fieldnames or []
        for col in needed:
            if col not in cols:
                raise ValueError(f"{path}: column {col!r} is missing (found {cols})")
        yield from enumerate(reader, 2)


def read_mc_tsv(
    path: str | Path, image_root: str | Path | None = None, problems: RowProblems | None = None
) -> list[MCQuestion]:
    """Questions of a TSV. A row that cannot be used (no question, fewer than 2 options, an
    answer that is not an option letter, an image that does not decode) raises naming the file
    and row, or, with ``problems``, is counted there and left out."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    questions = []
    for rowno, row in _rows(path, ("index", "question", "A", "B")):

        def bad(reason: str, message: str, rowno: int = rowno) -> None:
            _report(problems, path, rowno, reason, message)

        options = {k: row[k] for k in LETTERS if k in row and not _blank(row[k])}
        answer = None if _blank(row.get("answer")) else row["answer"].strip()
        if _blank(row.get("question")):
            bad("no_question", "the question is empty")
            continue
        if len(options) < 2:
            bad("too_few_options", f"{len(options)} option(s); a question needs A and B")
            continue
        if answer is not None and answer not in options:
            bad("bad_answer", f"answer {answer!r} is not one of the options {sorted(options)}")
            continue
        try:
            images = _images(row, root)
        except Exception as e:  # noqa: BLE001 - any decode failure names the row
            bad("bad_image", f"cannot read the image ({e})")
            continue
        questions.append(
            MCQuestion(
                index=row["index"],
                question=row["question"],
                options=options,
                answer=answer,
                images=images,
                hint=None if _blank(row.get("hint")) else row["hint"],
                category=None if _blank(row.get("category")) else row["category"],
            )
        )
    return questions


@dataclass
class OpenQuestion:
    """One open-ended question: ``answers`` are its reference answers (empty: none given)."""

    index: str
    question: str
    answers: list[str]
    images: list[Image.Image] = field(default_factory=list)
    category: str | None = None


def read_open_tsv(
    path: str | Path, image_root: str | Path | None = None, problems: RowProblems | None = None
) -> list[OpenQuestion]:
    """Open-ended TSV rows (``index, image, question, answer``; ``answer`` may hold several
    references separated by ``|`` or as a JSON list). Bad rows as in :func:`read_mc_tsv`."""
    from mmfw.data.question_format import reference_answers

    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    out = []
    for rowno, row in _rows(path, ("index", "question")):

        def bad(reason: str, message: str, rowno: int = rowno) -> None:
            _report(problems, path, rowno, reason, message)

        if _blank(row.get("question")):
            bad("no_question", "the question is empty")
            continue
        raw = None if _blank(row.get("answer")) else row["answer"].strip()
        if raw is not None and raw.startswith("["):
            with contextlib.suppress(json.JSONDecodeError):
                raw = json.loads(raw)
        try:
            images = _images(row, root)
        except Exception as e:  # noqa: BLE001
            bad("bad_image", f"cannot read the image ({e})")
            continue
        category = None if _blank(row.get("category")) else row["category"]
        out.append(
            OpenQuestion(row["index"], row["question"], reference_answers(raw), images, category)
        )
    return out


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
