"""Conversation records (LLaVA JSON, ShareGPT / OpenAI ``messages``): read and validate.

A file is a JSON list (``.json``) or one object per line (``.jsonl``). A record is either
LLaVA's ``{"id", "image": "rel/path" | [paths] | absent, "conversations": [{"from", "value"}]}``
or the chat-template form ``{"id", "images": [paths], "messages": [{"role", "content"}]}``
where ``content`` is a string or a list of ``{"type": "text", "text"}`` / ``{"type": "image"}``
parts (an image part may name its file: ``"image"``, ``"path"`` or ``"url"``). Which one is
decided per record by its keys. ``"video"`` (a file or a folder of frames) may replace the
images: its frames are sampled later and one ``<video>`` or ``<image>`` placeholder stands for
all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mmfw.data.templates.base import IMAGE_PLACEHOLDER, Turn

ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt", "model": "gpt"}
SYSTEM_ROLES = {"system"}
VIDEO_PLACEHOLDER = "<video>"


class RecordError(ValueError):
    """A record that cannot be used; ``reason`` is a short counter key (e.g. ``missing_image``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Record:
    """A validated sample: relative image paths and alternating human/gpt turns."""

    id: str
    images: list = field(default_factory=list)  # relative paths, or encoded bytes (TSV base64)
    turns: list[Turn] = field(default_factory=list)
    video: str | None = None  # a video file or a folder of frames (its placeholder: <video>)


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
    """Validate one raw record; raises :class:`RecordError` with a reason key.

    As LLaVA applies them: a leading assistant turn (ShareGPT dumps often start with "gpt")
    is dropped, not the whole record; system messages are left out (the template has its
    own); an image without any placeholder goes before the first question."""
    if not isinstance(raw, dict):
        raise RecordError("not_an_object", f"record is a {type(raw).__name__}, not an object")
    if "messages" in raw:
        turns, part_images = _messages(raw["messages"])
    else:
        turns, part_images = _conversations(raw.get("conversations")), []
    while turns and turns[0].role == "gpt":
        turns = turns[1:]
    if not turns:
        raise RecordError("no_conversations", "record has no human turn")
    images = _image_list(raw, part_images)
    video = raw.get("video")
    if video is not None:
        if images:
            raise RecordError("placeholder_mismatch", "a record has a video or images, not both")
        if not isinstance(video, str) or not video:
            raise RecordError("bad_video", f"'video' must be a path, got {video!r}")
        turns = _one_video_placeholder(turns)
    else:
        turns = _image_placeholders(turns, images)
    for i, turn in enumerate(turns):
        if turn.role != ("human" if i % 2 == 0 else "gpt"):
            raise RecordError(
                "bad_alternation", f"turn {i} is {turn.role}: turns must alternate from human"
            )
    if turns[-1].role != "gpt":
        raise RecordError("no_answer", "the last turn is not from gpt")
    return Record(id=str(raw.get("id", "")), images=images, turns=turns, video=video)


def _conversations(convs) -> list[Turn]:
    if not isinstance(convs, list) or not convs:
        raise RecordError("no_conversations", "record has no 'conversations' or 'messages' list")
    turns = []
    for i, msg in enumerate(convs):
        if not isinstance(msg, dict) or "value" not in msg:
            raise RecordError("bad_turn", f"turn {i} has no 'value'")
        role = str(msg.get("from", "")).lower()
        if role in SYSTEM_ROLES:
            continue
        if role not in ROLES:
            raise RecordError("bad_role", f"turn {i} has unknown role {msg.get('from')!r}")
        turns.append(Turn(ROLES[role], str(msg["value"])))
    return turns


def _messages(messages) -> tuple[list[Turn], list[str]]:
    """OpenAI/HF-chat ``messages``; returns the turns and the files image parts name."""
    if not isinstance(messages, list) or not messages:
        raise RecordError("no_conversations", "record has an empty 'messages' list")
    turns, images = [], []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "content" not in msg:
            raise RecordError("bad_turn", f"message {i} has no 'content'")
        role = str(msg.get("role", "")).lower()
        if role in SYSTEM_ROLES:
            continue
        if role not in ROLES:
            raise RecordError("bad_role", f"message {i} has unknown role {msg.get('role')!r}")
        content = msg["content"]
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            pieces = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text":
                    pieces.append(str(part.get("text", "")))
                elif kind in ("image", "image_url"):
                    pieces.append(IMAGE_PLACEHOLDER)
                    ref = part.get("image") or part.get("path") or part.get("url")
                    if isinstance(ref, dict):
                        ref = ref.get("url")
                    if isinstance(ref, str):
                        images.append(ref)
                elif kind == "video":
                    pieces.append(VIDEO_PLACEHOLDER)
                else:
                    raise RecordError(
                        "bad_turn", f"message {i} has a content part of type {kind!r}"
                    )
            text = "\n".join(p for p in pieces if p)
        else:
            raise RecordError("bad_turn", f"message {i} content is a {type(content).__name__}")
        turns.append(Turn(ROLES[role], text))
    return turns, images


def _image_list(raw: dict, part_images: list[str]) -> list:
    listed = raw.get("images", raw.get("image"))
    if listed is None:
        return part_images
    images = [listed] if isinstance(listed, str | bytes) else list(listed)
    if part_images and part_images != images:
        raise RecordError(
            "placeholder_mismatch", "the image parts and 'images' name different files"
        )
    return images


def _image_placeholders(turns: list[Turn], images: list) -> list[Turn]:
    n = sum(t.text.count(IMAGE_PLACEHOLDER) for t in turns)
    if sum(t.text.count(VIDEO_PLACEHOLDER) for t in turns):
        raise RecordError(
            "placeholder_mismatch", "a '<video>' placeholder in a record without 'video'"
        )
    if images and n == 0:
        # LLaVA's convention: an image without a placeholder goes before the first question.
        turns = [
            Turn(turns[0].role, IMAGE_PLACEHOLDER * len(images) + "\n" + turns[0].text),
            *turns[1:],
        ]
    elif n != len(images):
        raise RecordError(
            "placeholder_mismatch", f"{n} '<image>' placeholders for {len(images)} images"
        )
    return turns


def _one_video_placeholder(turns: list[Turn]) -> list[Turn]:
    """A video's frames take one placeholder (``<video>``, or a lone ``<image>``)."""
    text = [t.text for t in turns]
    videos = sum(t.count(VIDEO_PLACEHOLDER) for t in text)
    images = sum(t.count(IMAGE_PLACEHOLDER) for t in text)
    if videos + images == 0:
        return [Turn(turns[0].role, VIDEO_PLACEHOLDER + "\n" + turns[0].text), *turns[1:]]
    if videos + images != 1:
        raise RecordError(
            "placeholder_mismatch", f"a video record needs one placeholder, found {videos + images}"
        )
    return [Turn(t.role, t.text.replace(IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER)) for t in turns]
