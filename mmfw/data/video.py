"""Frames of a video: a video file (decoded with PyAV) or a folder of frame images."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from mmfw.data.formats.llava_json import RecordError
from mmfw.resolution.image_io import load_image

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def uniform_indices(total: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``total`` (the middle of each equal segment);
    every frame when there are fewer than ``n``."""
    if total <= n:
        return list(range(total))
    return [int((i + 0.5) * total / n) for i in range(n)]


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def sample_frames(video: str, root: Path, n: int) -> list:
    """``n`` frames sampled uniformly from ``root/video`` (a file or a folder of frames)."""
    path = Path(root) / video
    if not path.exists():
        raise RecordError("missing_video", f"video {path} does not exist")
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural
        )
        if not files:
            raise RecordError("bad_video", f"frames folder {path} holds no images")
        try:
            return [load_image(files[i]) for i in uniform_indices(len(files), n)]
        except OSError as e:
            raise RecordError("bad_video", f"a frame of {path} cannot be decoded ({e})") from e
    return _decode(path, n)


def _decode(path: Path, n: int) -> list[Image.Image]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            if total <= 0:  # containers that do not say: count by decoding
                total = sum(1 for _ in container.decode(video=0))
                container.seek(0)
            wanted = set(uniform_indices(total, n))
            frames = []
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames.append(Image.fromarray(np.asarray(frame.to_ndarray(format="rgb24"))))
                if len(frames) == len(wanted):
                    break
    except (av.error.FFmpegError, IndexError, ValueError, OSError) as e:
        raise RecordError("bad_video", f"video {path} cannot be decoded ({e})") from e
    if not frames:
        raise RecordError("bad_video", f"video {path} has no frames")
    return frames
