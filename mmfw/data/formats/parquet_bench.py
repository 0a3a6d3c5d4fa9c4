"""Benchmark questions from a local parquet file in the Hugging Face datasets layout.

Two layouts are read:
- MagnifierBench as published (``Otter-AI/MagnifierBench``): ``id``, ``instruction`` (the
  question followed by its options, "What colour is the mug? A. red, B. blue, C. ..."),
  ``images`` (a list of HF image structs ``{"bytes", "path"}``) and ``answer`` (the letter);
- the common multiple-choice / open-ended one: ``question``, options as columns ``A``..``H`` or
  a list in ``options`` / ``choices``, ``answer`` (a letter, an option's text, or free text),
  ``image`` or ``images``, and an id in ``index`` / ``id`` / ``question_id``.
Rows that cannot be used are counted in ``problems`` (see ``RowProblems``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image

from mmfw.data.formats.vlmeval_tsv import MCQuestion, OpenQuestion, RowProblems
from mmfw.data.question_format import LETTERS

_OPTION = re.compile(r"(?:^|(?<=[\s,]))([A-H])\.\s+")


def split_instruction(text: str) -> tuple[str, dict[str, str]]:
    """MagnifierBench's instruction → (question, {letter: option text})."""
    # Options follow the question mark when there is one (MagnifierBench's questions all end
    # with one), so a letter inside the question ("vitamin A. ...") is not an option.
    after = text.find("?") + 1
    marks, expected = [], 0
    for m in _OPTION.finditer(text, after):
        if m.group(1) == LETTERS[expected]:
            marks.append(m)
            expected += 1
    if not marks:
        return text.strip(), {}
    question = text[: marks[0].start()].strip()
    options = {}
    for m, nxt in zip(marks, [*marks[1:], None]):
        end = nxt.start() if nxt is not None else len(text)
        options[m.group(1)] = text[m.end() : end].strip().rstrip(",").strip()
    return question, options


def _image(value) -> Image.Image:
    if isinstance(value, dict):
        if value.get("bytes"):
            value = value["bytes"]
        elif value.get("path"):
            value = value["path"]
    img = Image.open(io.BytesIO(value) if isinstance(value, bytes) else value)
    img.load()
    return img


def read_parquet_rows(path: str | Path) -> list[dict]:
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark file {path} does not exist (check benchmark.path)")
    return pq.read_table(path).to_pylist()


def _images(row: dict) -> list[Image.Image]:
    if row.get("images") is not None:
        return [_image(v) for v in row["images"]]
    if row.get("image") is not None:
        return [_image(row["image"])]
    return []


def _index(row: dict, i: int) -> str:
    for key in ("index", "id", "question_id"):
        if row.get(key) is not None:
            return str(row[key])
    return str(i)


def _mc_parts(row: dict) -> tuple[str | None, dict[str, str]]:
    if row.get("instruction") is not None and row.get("question") is None:
        return split_instruction(str(row["instruction"]))
    question = row.get("question")
    options = {k: str(row[k]) for k in LETTERS if row.get(k) not in (None, "", "nan")}
    listed = row.get("options", row.get("choices"))
    if not options and isinstance(listed, list):
        options = {LETTERS[i]: str(v) for i, v in enumerate(listed[: len(LETTERS)])}
    return (None if question is None else str(question)), options


def read_mc_parquet(path: str | Path, problems: RowProblems) -> list[MCQuestion]:
    """Multiple-choice questions of a parquet file (either layout)."""
    out = []
    for i, row in enumerate(read_parquet_rows(path)):
        where = f"{Path(path).name}:row {i}"
        question, options = _mc_parts(row)
        if not question:
            problems.add("no_question", f"{where}: no question")
            continue
        if len(options) < 2:
            problems.add("too_few_options", f"{where}: {len(options)} option(s)")
            continue
        answer = row.get("answer")
        answer = None if answer in (None, "") else str(answer).strip()
        if answer is not None and answer not in options:
            by_text = [k for k, v in options.items() if v.strip().lower() == answer.lower()]
            if not by_text:
                problems.add("bad_answer", f"{where}: answer {answer!r} is not an option")
                continue
            answer = by_text[0]
        try:
            images = _images(row)
        except Exception as e:  # noqa: BLE001
            problems.add("bad_image", f"{where}: cannot read the image ({e})")
            continue
        category = row.get("category")
        out.append(
            MCQuestion(
                _index(row, i),
                question,
                options,
                answer,
                images,
                row.get("hint"),
                None if category is None else str(category),
            )  # fmt: skip
        )
    return out


def read_open_parquet(path: str | Path, problems: RowProblems) -> list[OpenQuestion]:
    """Open-ended questions of a parquet file: ``question`` + ``answer`` (text or list)."""
    from mmfw.data.question_format import reference_answers

    out = []
    for i, row in enumerate(read_parquet_rows(path)):
        where = f"{Path(path).name}:row {i}"
        question = row.get("question")
        if not question:
            problems.add("no_question", f"{where}: no question")
            continue
        try:
            images = _images(row)
        except Exception as e:  # noqa: BLE001
            problems.add("bad_image", f"{where}: cannot read the image ({e})")
            continue
        answers = row.get("answers", row.get("answer"))
        category = row.get("category")
        out.append(
            OpenQuestion(
                _index(row, i),
                str(question),
                reference_answers(answers),
                images,
                None if category is None else str(category),
            )  # fmt: skip
        )
    return out
