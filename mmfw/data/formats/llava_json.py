"""LLaVA conversation JSON (the de-facto standard): read and validate records.

A file is a JSON list (``.json``) or one object per line (``.jsonl``) of
``{"id", "image": "rel/path" | [paths] | absent, "conversations": [{"from", "value"}, ...]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mmfw.data.templates.base import IMAGE_PLACEHOLDER, Turn

ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}


class RecordError(ValueError):
    """A record that cannot be used; ``reason`` is a short counter key (e.g. ``missing_image``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Record:
    """A validated sample: relative image paths and alternating human/gpt turns."""

    id: str
    images: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)


def read_json_records(path: str | Path) -> list[dict]:
    """Raw records of a ``.json`` list or ``.jsonl`` file, with errors naming file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist (check data.sources.*.path)")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from e
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno} ({e.msg})") from e
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def parse_record(raw: dict) -> Record:
    """Validate one raw record; raises :class:`RecordError` with a reason key."""
    if not isinstance(raw, dict):
        raise RecordError("not_an_object", f"record is a {type(raw).__name__}, not an object")
    convs = raw.get("conversations")
    if not isinstance(convs, list) or not convs:
        raise RecordError("no_conversations", "record has no 'conversations' list")
    turns = []
    for i, msg in enumerate(convs):
        if not isinstance(msg, dict) or "value" not in msg:
            raise RecordError("bad_turn", f"turn {i} has no 'value'")
        role = ROLES.get(str(msg.get("from", "")).lower())
        if role is None:
            raise RecordError("bad_role", f"turn {i} has unknown role {msg.get('from')!r}")
        turns.append(Turn(role, str(msg["value"])))
    image = raw.get("image")
    images = [] if image is None else ([image] if isinstance(image, str) else list(image))
    n_placeholders = sum(t.text.count(IMAGE_PLACEHOLDER) for t in turns)
    if images and n_placeholders == 0:
        # LLaVA's convention: an image without a placeholder goes before the first question.
        turns[0] = Turn(turns[0].role, IMAGE_PLACEHOLDER * len(images) + "\n" + turns[0].text)
    elif n_placeholders != len(images):
        raise RecordError(
            "placeholder_mismatch",
            f"{n_placeholders} '<image>' placeholders for {len(images)} images",
        )
    for i, turn in enumerate(turns):
        if turn.role != ("human" if i % 2 == 0 else "gpt"):
            raise RecordError(
                "bad_alternation", f"turn {i} is {turn.role}: turns must alternate from human"
            )
    if turns[-1].role != "gpt":
        raise RecordError("no_answer", "the last turn is not from gpt")
    return Record(id=str(raw.get("id", "")), images=images, turns=turns)
