"""Preprocessing throughput: decode → views tensor, mmfw vs transformers' image processors.

Run with ``make bench``. Prints images/s and ratios measured in the same run: against
transformers, and against the bare JPEG decode (the floor: "mmfw / decode" is mmfw's time per
image as a multiple of decoding alone). Asserts only that both sides produced the same number
of views (the same job).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from transformers import LlavaNextImageProcessor
from transformers.models.llava_next.image_processing_pil_llava_next import (
    LlavaNextImageProcessorPil,
)

from mmfw.resolution.anyres import AnyRes
from mmfw.resolution.dynamic_partition import DynamicPartition
from mmfw.resolution.image_io import load_image

pytestmark = pytest.mark.bench
CLIP = {
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}


def photo(path, w, h):
    """A JPEG with photo-like content (smooth regions and edges), saved at quality 90."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (h // 20, w // 20, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.BICUBIC).save(path, quality=90)
    return path


def rate(fn, seconds: float) -> float:
    """Images per second of ``fn`` (one image per call) over about ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def rates(fns: dict, rounds: int = 5, seconds: float = 0.8) -> dict:
    """The median over ``rounds`` of each function's rate, the functions taking turns within
    every round, so that a busy spell on this shared machine hits all sides alike."""
    for fn in fns.values():
        fn()  # warm-up
    seen: dict = {label: [] for label in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            seen[label].append(rate(fn, seconds))
    return {label: statistics.median(r) for label, r in seen.items()}


def compare(name: str, mmfw_fn, baselines: dict, decoders: dict | None = None) -> None:
    measured = rates({"mmfw": mmfw_fn, **baselines, **(decoders or {})})
    ours = measured["mmfw"]
    print(f"\n[{name}] mmfw: {ours:.2f} images/s")
    for label in baselines:
        theirs = measured[label]
        print(f"[{name}] {label}: {theirs:.2f} images/s -> mmfw is {ours / theirs:.2f}x")
    for label in decoders or {}:
        floor = measured[label]
        print(f"[{name}] {label}: {floor:.2f} images/s -> mmfw / decode = {floor / ours:.2f}x")


def decoders(path) -> dict:
    """Bare decodes of the file to RGB uint8, nothing else: the floor for mmfw's time."""

    def torchvision_decode():
        data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        return decode_jpeg(data, mode=ImageReadMode.RGB)

    def pil_decode():
        with Image.open(path) as img:
            return img.convert("RGB")

    return {
        "bare decode, torchvision decode_jpeg (load_image's decoder)": torchvision_decode,
        "bare decode, PIL": pil_decode,
    }


def hf_processor(cls, pinpoints):
    return cls(
        image_grid_pinpoints=pinpoints,  # [height, width], as mmfw's resolution.pinpoints
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        **CLIP,
    )


def baselines(path, pinpoints, n_views):
    fast = hf_processor(LlavaNextImageProcessor, pinpoints)
    pil = hf_processor(LlavaNextImageProcessorPil, pinpoints)

    def run(proc, image):
        out = proc(images=image, return_tensors="pt")["pixel_values"]
        assert out.shape[1] == n_views
        return out

    return {
        "transformers LlavaNextImageProcessor (torchvision backend), PIL decode": lambda: run(
            fast, Image.open(path)
        ),
        "transformers LlavaNextImageProcessor, torchvision-decoded tensor": lambda: run(
            fast, load_image(path)
        ),
        "transformers LlavaNextImageProcessorPil (numpy backend)": lambda: run(
            pil, Image.open(path)
        ),
    }


def test_hd25_on_a_4k_jpeg(tmp_path):
    path = photo(tmp_path / "4k.jpg", 3840, 2160)
    strategy = DynamicPartition(crop_size=336, max_crops=25)
    views, layout = strategy(load_image(path))
    rows, cols = layout.grid
    # The equivalent transformers job: tile into the same rows x cols grid of 336 crops.
    pinpoints = [[336 * rows, 336 * cols]]
    compare(
        f"hd25, 3840x2160 JPEG -> {views.shape[0]} views",
        lambda: strategy(load_image(path, strategy.source_size)),
        baselines(path, pinpoints, views.shape[0]),
        decoders(path),
    )
    mean = torch.tensor(CLIP["image_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(CLIP["image_std"]).view(1, 3, 1, 1)
    compare(
        "hd25 incl. float normalisation (what the model does on its device)",
        lambda: (strategy(load_image(path, strategy.source_size))[0].float() / 255 - mean) / std,
        {},
    )


def test_anyres_on_a_1080p_jpeg(tmp_path):
    path = photo(tmp_path / "1080p.jpg", 1920, 1080)
    pinpoints = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    strategy = AnyRes(crop_size=336, pinpoints=pinpoints)
    views, _ = strategy(load_image(path))
    compare(
        f"anyres, 1920x1080 JPEG -> {views.shape[0]} views",
        lambda: strategy(load_image(path, strategy.source_size)),
        baselines(path, pinpoints, views.shape[0]),
        decoders(path),
    )
    compare(
        "anyres with a full-scale decode (views identical to transformers')",
        lambda: strategy(load_image(path)),
        {},
        decoders(path),
    )
