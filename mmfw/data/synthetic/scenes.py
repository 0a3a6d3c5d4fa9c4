"""Random scenes with per-pixel object labels: the image distribution a toy encoder pretrains on.

A scene is the magnifier task's world without a question: a gray, jittered, noisy canvas with
large muted clutter shapes and a few small objects, each with a colour, a shape and a surface
(solid or one of the equal-mean textures). Alongside the pixels comes an object-id map, so a
view cut from the scene at any scale gets dense (per-patch) labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from mmfw.data.synthetic.magnifier import COLOURS, PATTERNS, SHAPES, pattern_texture, shape_mask

COLOUR_NAMES = tuple(COLOURS)
# Surface classes: 0 = no object (background or clutter), 1 = solid, 2.. = PATTERNS.
SURFACES = ("none", "solid", *PATTERNS)
IGNORE = -100


@dataclass
class Scene:
    """Pixels (H, W, 3) uint8, object ids (H, W) int (-1: background, 0..n-1 objects) and each
    object's attributes (colour, shape, surface class indices; clutter has colour -1)."""

    pixels: np.ndarray
    ids: np.ndarray
    colour: np.ndarray
    shape: np.ndarray
    surface: np.ndarray


def draw_scene(
    rng: np.random.Generator,
    canvas: int,
    objects: tuple[int, int],
    object_size: tuple[int, int],
    clutter: tuple[int, int],
    clutter_size: tuple[int, int],
    pattern_fraction: float,
    noise: float,
    background_jitter: int,
) -> Scene:
    """One scene; small objects are drawn last, so they are never hidden by clutter."""
    base = 128 + rng.integers(-background_jitter, background_jitter + 1, size=3)
    img = np.empty((canvas, canvas, 3), np.float32)
    img[:] = base
    ids = np.full((canvas, canvas), -1, np.int64)
    colour, shape, surface = [], [], []
    n_clutter = int(rng.integers(clutter[0], clutter[1] + 1))
    n_objects = int(rng.integers(objects[0], objects[1] + 1))
    for k in range(n_clutter + n_objects):
        is_clutter = k < n_clutter
        lo, hi = clutter_size if is_clutter else object_size
        size = int(rng.integers(lo, hi + 1))
        c = int(rng.integers(len(COLOUR_NAMES)))
        rgb = np.array(COLOURS[COLOUR_NAMES[c]], np.float32)
        patterned = not is_clutter and rng.random() < pattern_fraction
        s = 0 if patterned else int(rng.integers(len(SHAPES)))  # textures sit on squares
        mask = shape_mask(SHAPES[s], size)
        if is_clutter:
            value = np.broadcast_to(0.35 * rgb + 0.65 * base, (size, size, 3))
            surf = 0
        elif patterned:
            p = int(rng.integers(len(PATTERNS)))
            texture = pattern_texture(PATTERNS[p], size)[..., None]
            value = texture * rgb + (1 - texture) * 255.0
            surf = 2 + p
        else:
            value = np.broadcast_to(rgb, (size, size, 3))
            surf = 1
        top = int(rng.integers(0, canvas - size + 1))
        left = int(rng.integers(0, canvas - size + 1))
        img[top : top + size, left : left + size][mask] = value[mask]
        ids[top : top + size, left : left + size][mask] = k
        colour.append(-1 if is_clutter else c)
        shape.append(-1 if is_clutter else s)
        surface.append(surf)
    img += rng.normal(0.0, noise, size=img.shape)
    return Scene(
        pixels=np.clip(img, 0, 255).round().astype(np.uint8),
        ids=ids,
        colour=np.array(colour, np.int64),
        shape=np.array(shape, np.int64),
        surface=np.array(surface, np.int64),
    )


def cut_view(
    scene: Scene,
    rng: np.random.Generator,
    view: int,
    patch: int,
    scale: float,
    min_cover: float = 0.25,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A ``view``-px view of a square region of ``view / scale`` scene pixels (the whole scene
    when that is larger), resized as the resolution strategies resize (bilinear, antialiased),
    and the labels of each ``patch``-px patch: the object covering most of it (at least
    ``min_cover`` of its area), else none. A texture cannot be read below scale 1 (its period is
    1-4 px), so there its surface label is ignored."""
    canvas = scene.pixels.shape[0]
    side = min(canvas, max(1, round(view / scale)))
    top = int(rng.integers(0, canvas - side + 1))
    left = int(rng.integers(0, canvas - side + 1))
    pixels = torch.from_numpy(scene.pixels[top : top + side, left : left + side]).permute(2, 0, 1)
    ids = torch.from_numpy(scene.ids[top : top + side, left : left + side])
    if side != view:
        pixels = TF.resize(pixels, [view, view], InterpolationMode.BILINEAR, antialias=True)
        ids = TF.resize(ids[None], [view, view], InterpolationMode.NEAREST_EXACT)[0]
    n = len(scene.colour)
    grid = view // patch
    onehot = torch.nn.functional.one_hot(ids + 1, n + 1).permute(2, 0, 1).float()
    cover = torch.nn.functional.avg_pool2d(onehot[None], patch)[0]  # (n+1, g, g)
    best = cover[1:].argmax(0) if n else torch.zeros(grid, grid, dtype=torch.long)
    has = (cover[1:].max(0).values >= min_cover) if n else torch.zeros(grid, grid, dtype=bool)

    def label(values: np.ndarray, shift: int) -> torch.Tensor:
        table = torch.from_numpy(values) + shift if n else torch.zeros(0, dtype=torch.long)
        out = torch.where(has, table[best] if n else 0, 0)
        return out.flatten()

    labels = {
        "colour": label(scene.colour, 1),  # 0: none (background or clutter)
        "shape": label(scene.shape, 1),
        "surface": label(scene.surface, 0),
    }
    if side / view > 1.0 + 1e-6:  # downsampled: textures are averaged away
        labels["surface"] = torch.where(labels["surface"] >= 2, IGNORE, labels["surface"])
    return pixels, labels
