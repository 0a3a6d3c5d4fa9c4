"""A VLMEvalKit TSV (MMBench layout) as a training or validation source."""

from __future__ import annotations

import base64
import csv
import sys

from mmfw.data.question_format import LETTERS, MC_SUFFIX, format_multiple_choice
from mmfw.data.sources import JsonSource


def _blank(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().lower() == "nan"


class TsvSource(JsonSource):
    """Rows of a VLMEvalKit TSV as conversations: the multiple-choice prompt (hint, question,
    lettered options, ``prompt_suffix``) answered with the letter; a row without options
    (open-ended TSVs: index, image, question, answer) is answered with its answer text. Images
    come from the ``image`` (base64) or ``image_path`` column. Rows without an answer cannot
    be trained on and are skipped as ``no_answer``.

    Yaml keys: those of any source (path, image_root, category, kind, weight or alpha,
    max_samples, epochs), plus prompt_suffix.
    """

    def __init__(self, *, prompt_suffix: str = MC_SUFFIX, **source) -> None:
        super().__init__(**source)
        self.prompt_suffix = prompt_suffix

    def size_hint(self) -> int | None:
        """Known once the records are read (counting them means reading them)."""
        return None if self._records is None else len(self._records)

    def records(self) -> list[dict]:
        if self._records is None:
            records = self._read()
            self._records = records[: self.max_samples] if self.max_samples else records
        return self._records

    def _read(self) -> list[dict]:
        if not self.path.exists():
            raise FileNotFoundError(
                f"data file {self.path} does not exist (check data.sources.*.path)"
            )
        csv.field_size_limit(sys.maxsize)
        out = []
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            cols = reader.fieldnames or []
            for needed in ("index", "question"):
                if needed not in cols:
                    raise ValueError(f"{self.path}: column {needed!r} is missing (found {cols})")
            for row in reader:
                options = [row[k] for k in LETTERS if k in row and not _blank(row[k])]
                hint = None if _blank(row.get("hint")) else row["hint"]
                if options:
                    prompt = format_multiple_choice(
                        row["question"], options, hint=hint, suffix=self.prompt_suffix
                    )
                else:
                    prompt = "\n".join(p for p in (hint, row["question"]) if p)
                turns = [{"from": "human", "value": prompt}]
                if not _blank(row.get("answer")):
                    turns.append({"from": "gpt", "value": row["answer"].strip()})
                record = {"id": row["index"], "conversations": turns}
                if not _blank(row.get("image")):
                    record["image"] = base64.b64decode(row["image"])
                elif not _blank(row.get("image_path")):
                    record["image"] = row["image_path"]
                out.append(record)
        return out
