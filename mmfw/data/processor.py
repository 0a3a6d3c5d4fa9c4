"""Record → model inputs: images through the resolution strategy, text through the template.

Each ``<image>`` placeholder expands to exactly as many image-token ids as the model will
produce embeddings for that image (``ImageTokenCounter``, from the one accounting function).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from mmfw.data.formats.llava_json import VIDEO_PLACEHOLDER, Record, RecordError
from mmfw.data.templates.base import IMAGE_PLACEHOLDER, ChatTemplate, Segment, Turn
from mmfw.resolution.base import ResolutionStrategy
from mmfw.resolution.image_io import ReducedImage, SourceSize, load_image, to_rgb
from mmfw.resolution.layout import FeatureGrid, ImageLayout, TokenMap, count_image_tokens

IGNORE = -100


def sample_frames(video: str, root: Path, n: int) -> list:
    from mmfw.data.video import sample_frames as frames  # PyAV is imported only for videos

    return frames(video, root, n)


@dataclass(frozen=True)
class ImageTokenCounter:
    """Sequence positions an image takes: ``layout`` → its embedding count (inline fusion);
    ``maps`` → one per token map of its layout (hyper attention); an int → that many."""

    grid: FeatureGrid
    per_image: str | int = "layout"

    def __call__(self, layout: ImageLayout) -> int:
        if self.per_image == "layout":
            return count_image_tokens(layout, self.grid)
        if self.per_image == "maps":
            return sum(isinstance(p, TokenMap) for p in layout.parts)
        return int(self.per_image)


@dataclass
class Sample:
    """One tokenised sample; ``labels`` is None for generation prompts."""

    input_ids: list[int]
    labels: list[int] | None
    images: list[torch.Tensor] = field(default_factory=list)
    layouts: list[ImageLayout] = field(default_factory=list)
    id: str = ""


class SampleProcessor:
    """Shared by training, evaluation and planning, so all three tokenise identically."""

    def __init__(
        self,
        *,
        tokenizer,
        template: ChatTemplate,
        strategy: ResolutionStrategy,
        counter: ImageTokenCounter,
        max_length: int,
        image_token: str = "<image>",
        video_frames: int = 8,
        truncate: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.strategy = strategy
        self.counter = counter
        self.max_length = max_length
        self.video_frames = int(video_frames)
        self.truncate = bool(truncate)
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {image_token!r} token")
        self.bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []

    # -- images --------------------------------------------------------------------------------

    @staticmethod
    def open_images(
        paths: list, root: Path, need: SourceSize | None = None
    ) -> list[Image.Image | torch.Tensor | ReducedImage]:
        """Decode a record's images: paths relative to ``root``, or encoded bytes (a TSV).

        ``need`` is the strategy's ``source_size``: JPEG files may then be decoded at a
        reduced DCT scale that still covers it."""
        images = []
        for rel in paths:
            if isinstance(rel, bytes):
                try:
                    with Image.open(io.BytesIO(rel)) as img:
                        img.load()
                        images.append(to_rgb(img))
                except (UnidentifiedImageError, OSError) as e:
                    raise RecordError(
                        "bad_image", f"an embedded image cannot be decoded ({e})"
                    ) from e
                continue
            path = root / rel
            try:
                images.append(load_image(path, need))
            except FileNotFoundError as e:
                raise RecordError("missing_image", f"image {path} does not exist") from e
            except (UnidentifiedImageError, OSError) as e:
                raise RecordError("bad_image", f"image {path} cannot be decoded ({e})") from e
        return images

    def views(
        self, images: list[Image.Image], **options
    ) -> tuple[list[torch.Tensor], list[ImageLayout]]:
        pairs = [self.strategy(img, images_in_sample=len(images), **options) for img in images]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    # -- text ----------------------------------------------------------------------------------

    def encode(
        self, segments: list[Segment], layouts: list[ImageLayout]
    ) -> tuple[list[int], list[int]]:
        ids, labels, _ = self.encode_with_borders(segments, layouts)
        return ids, labels

    def encode_with_borders(
        self, segments: list[Segment], layouts: list[ImageLayout]
    ) -> tuple[list[int], list[int], list[int]]:
        """Token ids and labels, each image placeholder expanded to its token count, and the
        positions where an answer ends (the turn borders text may be cut at)."""
        text_ids, targets, text_borders = self.tokenize(segments)
        ids = list(self.bos) + text_ids
        labels = [IGNORE] * len(self.bos) + [
            t if m else IGNORE for t, m in zip(text_ids, targets, strict=True)
        ]
        borders = [b + len(self.bos) for b in text_borders]
        slots = [i for i, t in enumerate(ids) if t == self.image_token_id]
        if len(slots) != len(layouts):
            raise RecordError(
                "placeholder_mismatch", f"{len(slots)} image placeholders for {len(layouts)} images"
            )
        out_ids, out_labels, start = [], [], 0
        grown = []  # (position of a slot, tokens it adds)
        for slot, layout in zip(slots, layouts, strict=True):
            n = self.counter(layout)
            out_ids += ids[start:slot] + [self.image_token_id] * n
            out_labels += labels[start:slot] + [IGNORE] * n
            grown.append((slot, n - 1))
            start = slot + 1
        borders = [b + sum(extra for slot, extra in grown if slot < b) for b in borders]
        return out_ids + ids[start:], out_labels + labels[start:], borders

    def tokenize(self, segments: list[Segment]) -> tuple[list[int], list[bool], list[int]]:
        """Ids of the segments' text tokenised as ONE string (as transformers' processors and
        the LLaVA code tokenise a prompt: a SentencePiece tokenizer would otherwise add a "▁"
        at every join), which tokens are targets (by the character each starts at), and the
        token count at the end of each target segment."""
        parts = [seg for seg in segments if seg.text]
        if not getattr(self.tokenizer, "is_fast", False):  # no offsets: one segment at a time
            return self._tokenize_apart(parts)
        text = "".join(seg.text for seg in parts)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ends, flags, pos = [], [], 0
        for seg in parts:
            pos += len(seg.text)
            ends.append(pos)
            flags.append(seg.target)
        targets, k = [], 0
        for start, _ in enc["offset_mapping"]:
            while k < len(ends) - 1 and start >= ends[k]:
                k += 1
            targets.append(flags[k])
        borders = [
            sum(1 for start, _ in enc["offset_mapping"] if start < end)
            for end, flag in zip(ends, flags, strict=True)
            if flag
        ]
        return list(enc["input_ids"]), targets, borders

    def _tokenize_apart(self, parts: list[Segment]) -> tuple[list[int], list[bool], list[int]]:
        ids, targets, borders = [], [], []
        for seg in parts:
            piece = self.tokenizer(seg.text, add_special_tokens=False)["input_ids"]
            ids += piece
            targets += [seg.target] * len(piece)
            if seg.target:
                borders.append(len(ids))
        return ids, targets, borders

    def training_sample(self, record: Record, image_root: Path, **options) -> Sample:
        """Tokenised training sample; raises RecordError (with a reason) for unusable records.

        ``options`` are the strategy's batch-level choices (see ``batch_options``)."""
        turns = record.turns
        if record.video:
            # The frames are the images; the one <video> placeholder stands for all of them.
            images = sample_frames(record.video, image_root, self.video_frames)
            turns = [
                Turn(t.role, t.text.replace(VIDEO_PLACEHOLDER, IMAGE_PLACEHOLDER * len(images)))
                for t in turns
            ]
        else:
            images = self.open_images(record.images, image_root, self.strategy.source_size)
        pixels, layouts = self.views(images, **options)
        try:
            segments = self.template.render(turns)
        except ValueError as e:
            raise RecordError("template", str(e)) from e
        ids, labels, borders = self.encode_with_borders(segments, layouts)
        if len(ids) > self.max_length:
            ids, labels = self._fit(ids, labels, borders)
        if all(label == IGNORE for label in labels):
            raise RecordError("no_target", "no answer tokens left to train on")
        return Sample(ids, labels, pixels, layouts, record.id)

    def _fit(
        self, ids: list[int], labels: list[int], borders: list[int]
    ) -> tuple[list[int], list[int]]:
        """An over-long sample: cut at the last turn border that fits (``truncate``), never
        inside an image's tokens; otherwise the record is skipped as ``too_long``."""
        last_image = max((i for i, t in enumerate(ids) if t == self.image_token_id), default=-1)
        cut = max((b for b in borders if b <= self.max_length), default=0) if self.truncate else 0
        if cut == 0 or last_image >= cut:
            hint = (
                ""
                if self.truncate
                else "; data.truncate=true cuts text-only overflow at a turn border"
            )
            raise RecordError(
                "too_long",
                f"{len(ids)} tokens (images expanded) > data.max_length={self.max_length}{hint}",
            )
        return ids[:cut], labels[:cut]

    def prompt_sample(self, turns: list[Turn], images: list[Image.Image]) -> Sample:
        """Tokenised generation prompt (ends where the assistant's answer starts)."""
        pixels, layouts = self.views(images)
        ids, _ = self.encode(self.template.prompt(turns), layouts)
        return Sample(ids, None, pixels, layouts)
