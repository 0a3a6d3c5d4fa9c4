"""A toy stand-in for CLIP: pretrain a tiny vision tower on generated scenes, once, cached.

Real VLM ablations start from a pretrained encoder whose patch tokens already say what is
where; a from-scratch tiny ViT inside a VLM learns only pixel-linear attributes (colour) in
the minutes a toy study has. This pretraining gives the tiny tower those patch semantics:
every patch token of a view learns to name the colour, shape and surface (solid or texture)
of the object under it, and its own row and column, from views cut out of random scenes at
the scales the resolution strategies produce (downsampled whole images, native crops,
upsampled crops). The result is an ordinary transformers folder (config.json +
model.safetensors) under ``<cache>/encoders/``, keyed by a hash of the recipe and the
tower's config, and loaded through ``encoder.pretrained`` like any checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from hydra.utils import get_class

from mmfw.data.synthetic.scenes import COLOUR_NAMES, IGNORE, SHAPES, SURFACES, cut_view, draw_scene
from mmfw.models.encoders.hf_vision import drop_position_embedding

log = logging.getLogger(__name__)

HEADS = ("colour", "shape", "surface", "position")
# Bump when the scenes, labels or training loop change what a given recipe produces.
VERSION = 1


class ScenePretraining:
    """Dense attribute pretraining of a transformers vision tower on generated scenes.

    Yaml keys (``encoder.pretrained: {_target_: ...ScenePretraining, ...}``):
      steps: optimizer steps.
      batch_size: views per step.
      lr: peak AdamW learning rate (5% linear warmup, cosine to 0); weight_decay: AdamW's.
      canvas: side of the generated scenes in pixels.
      scales: view scales to draw from: a view of the tower's ``image_size`` shows a square of
        ``image_size / scale`` scene pixels (0.5: a 2x-downsampled whole scene, as HD-1 or a
        global view; 1: a native crop; 1.5: an upsampled crop, as HD-9).
      objects: [min, max] small objects per scene; object_size: their [min, max] side.
      clutter: [min, max] large muted shapes per scene; clutter_size: their [min, max] side.
      pattern_fraction: share of small objects that carry a texture instead of a solid colour.
      noise, background_jitter: pixel noise σ and ± per-channel background jitter.
      heads: what every patch token learns to predict: colour | shape | surface | position.
      seed: seed of the scenes and the initialisation.
      cache_dir: the mmfw cache; the tower is written to ``<cache_dir>/encoders/``.
    """

    def __init__(
        self,
        *,
        steps: int = 1000,
        batch_size: int = 64,
        lr: float = 2e-3,
        weight_decay: float = 0.05,
        canvas: int = 64,
        scales: list[float] | tuple[float, ...] = (0.5, 1.0, 1.5),
        objects: list[int] | tuple[int, int] = (1, 3),
        object_size: list[int] | tuple[int, int] = (6, 14),
        clutter: list[int] | tuple[int, int] = (0, 3),
        clutter_size: list[int] | tuple[int, int] = (10, 22),
        pattern_fraction: float = 0.5,
        noise: float = 8.0,
        background_jitter: int = 40,
        heads: list[str] | tuple[str, ...] = HEADS,
        seed: int = 0,
        cache_dir: str = "~/.cache/mmfw",
    ) -> None:
        unknown = [h for h in heads if h not in HEADS]
        if unknown or not heads:
            raise ValueError(f"encoder.pretrained.heads={list(heads)}: choose from {HEADS}")
        if steps < 1 or batch_size < 1:
            raise ValueError("encoder.pretrained.steps and batch_size must be at least 1")
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"encoder.pretrained.scales={list(scales)} must be positive")
        for key, pair in (("objects", objects), ("object_size", object_size),
                          ("clutter", clutter), ("clutter_size", clutter_size)):  # fmt: skip
            if len(pair) != 2 or pair[0] > pair[1] or pair[0] < 0:
                raise ValueError(f"encoder.pretrained.{key}={list(pair)}: give [min, max]")
        if max(object_size[1], clutter_size[1]) > canvas:
            raise ValueError("encoder.pretrained: objects and clutter must fit the canvas")
        self.recipe: dict[str, Any] = {
            "steps": int(steps),
            "batch_size": int(batch_size),
            "lr": float(lr),
            "weight_decay": float(weight_decay),
            "canvas": int(canvas),
            "scales": [float(s) for s in scales],
            "objects": [int(v) for v in objects],
            "object_size": [int(v) for v in object_size],
            "clutter": [int(v) for v in clutter],
            "clutter_size": [int(v) for v in clutter_size],
            "pattern_fraction": float(pattern_fraction),
            "noise": float(noise),
            "background_jitter": int(background_jitter),
            "heads": list(heads),
            "seed": int(seed),
        }
        self.cache_dir = Path(cache_dir).expanduser()

    # -- the cache ------------------------------------------------------------------------------

    def folder(
        self, model_class: str, config: dict, image_mean, image_std,
        position_embedding: bool = True,
    ) -> Path:  # fmt: skip
        """Where the tower for ``model_class(config)`` pretrained by this recipe lives."""
        # Only a tower without position embeddings adds the key: existing caches keep their hash.
        placeless = {} if position_embedding else {"position_embedding": False}
        key = json.dumps(
            {"version": VERSION, "model_class": model_class, "config": config,
             "image_mean": list(image_mean), "image_std": list(image_std), **self.recipe,
             **placeless},
            sort_keys=True,
        )  # fmt: skip
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.cache_dir / "encoders" / f"{model_class.rsplit('.', 1)[-1]}-{digest}"

    def __call__(
        self, model_class: str, config: dict, image_mean: list[float], image_std: list[float],
        position_embedding: bool = True,
    ) -> str:  # fmt: skip
        """The folder of ``model_class(config)`` pretrained on views normalised with
        ``image_mean`` / ``image_std`` (``position_embedding=False``: with the tower's position
        embeddings held at zero); trained first if it is not in the cache (one process trains,
        others wait for it: DDP ranks and parallel sweeps share one result)."""
        if not position_embedding and "position" in self.recipe["heads"]:
            raise ValueError(
                "encoder.position_embedding=false leaves the patch tokens no way to learn their "
                "row and column: drop 'position' from encoder.pretrained.heads"
            )
        image_mean, image_std = [float(v) for v in image_mean], [float(v) for v in image_std]
        target = self.folder(model_class, config, image_mean, image_std, position_embedding)
        if (target / "pretraining.json").exists():
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if (target / "pretraining.json").exists():
                return str(target)
            tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            try:
                self.run(model_class, config, image_mean, image_std, tmp, position_embedding)
                os.rename(tmp, target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return str(target)

    # -- training -------------------------------------------------------------------------------

    def _batch(self, rng: np.random.Generator, n: int, view: int, patch: int):
        r = self.recipe
        pixels, labels = [], []
        for _ in range(n):
            scene = draw_scene(
                rng, r["canvas"], tuple(r["objects"]), tuple(r["object_size"]),
                tuple(r["clutter"]), tuple(r["clutter_size"]), r["pattern_fraction"],
                r["noise"], r["background_jitter"],
            )  # fmt: skip
            scale = r["scales"][int(rng.integers(len(r["scales"])))]
            x, lab = cut_view(scene, rng, view, patch, scale)
            pixels.append(x)
            labels.append(lab)
        grid = view // patch
        out = {k: torch.stack([lab[k] for lab in labels]) for k in ("colour", "shape", "surface")}
        out["row"] = torch.arange(grid).repeat_interleave(grid).expand(n, -1)
        out["col"] = torch.arange(grid).repeat(grid).expand(n, -1)
        return torch.stack(pixels), out

    def _targets(self, grid: int) -> dict[str, int]:
        sizes = {"colour": len(COLOUR_NAMES) + 1, "shape": len(SHAPES) + 1,
                 "surface": len(SURFACES)}  # fmt: skip
        out = {h: sizes[h] for h in self.recipe["heads"] if h != "position"}
        if "position" in self.recipe["heads"]:
            out.update(row=grid, col=grid)
        return out

    def run(
        self, model_class: str, config: dict, image_mean: list[float], image_std: list[float],
        out: Path, position_embedding: bool = True,
    ) -> dict:  # fmt: skip
        """Train the tower, save it with ``save_pretrained`` to ``out`` with
        ``pretraining.json`` (the recipe, time and per-head accuracy on held-out views)."""
        r = self.recipe
        cls = get_class(model_class)
        torch.manual_seed(r["seed"])
        model = cls._from_config(cls.config_class(**config), attn_implementation="sdpa")
        if not position_embedding:
            drop_position_embedding(model)
        view, patch = int(model.config.image_size), int(model.config.patch_size)
        if view % patch:
            raise ValueError(f"encoder image_size {view} is not a multiple of patch_size {patch}")
        grid = view // patch
        width = int(model.config.hidden_size)
        heads = torch.nn.ModuleDict(
            {k: torch.nn.Linear(width, n) for k, n in self._targets(grid).items()}
        )
        mean = torch.tensor(image_mean).view(1, 3, 1, 1)
        std = torch.tensor(image_std).view(1, 3, 1, 1)
        params = [p for p in [*model.parameters(), *heads.parameters()] if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=r["lr"], betas=(0.9, 0.98),
                                weight_decay=r["weight_decay"])  # fmt: skip
        warmup = max(1, r["steps"] // 20)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, r["steps"] - warmup)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        rng = np.random.default_rng([r["seed"], 0])

        def features(x: torch.Tensor) -> torch.Tensor:
            x = (x.float() / 255.0 - mean) / std
            hidden = model(pixel_values=x, output_hidden_states=True).hidden_states[-1]
            return hidden[:, -grid * grid :]  # patch tokens (a CLS token, if any, comes first)

        log.info("pretraining %s (%s) on generated scenes: %d steps of %d views",
                 model_class, out.name, r["steps"], r["batch_size"])  # fmt: skip
        start = time.time()
        model.train()
        for step in range(r["steps"]):
            x, labels = self._batch(rng, r["batch_size"], view, patch)
            h = features(x)
            loss = sum(_loss(k, head(h), labels[k]) for k, head in heads.items())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if (step + 1) % max(1, r["steps"] // 5) == 0:
                log.info("encoder pretraining step %d/%d: loss %.3f", step + 1, r["steps"],
                         loss.item())  # fmt: skip
        seconds = time.time() - start
        model.eval()
        held_out = np.random.default_rng([r["seed"], 1])
        with torch.no_grad():
            x, labels = self._batch(held_out, 512, view, patch)
            h = features(x)
            accuracy = {k: _object_accuracy(k, head(h), labels[k]) for k, head in heads.items()}
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out))
        record = {"model_class": model_class, "config": config, "recipe": r,
                  "position_embedding": position_embedding,
                  "version": VERSION, "seconds": round(seconds, 1),
                  "held_out_accuracy": accuracy}  # fmt: skip
        (out / "pretraining.json").write_text(json.dumps(record, indent=2))
        log.info("encoder pretraining done in %.0f s; held-out patch accuracy %s", seconds,
                 {k: round(v, 3) for k, v in accuracy.items()})  # fmt: skip
        return record


def _loss(head: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; for the object heads, patches that name nothing (class 0: background,
    clutter) and patches that name something weigh equally: objects cover a few patches of a
    view, and a plain mean would first teach every token to say "nothing"."""
    logits, labels = logits.flatten(0, 1), labels.flatten()
    if head in ("row", "col"):
        return torch.nn.functional.cross_entropy(logits, labels)
    losses = torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE,
                                               reduction="none")  # fmt: skip
    parts = [losses[m].mean() for m in (labels == 0, labels > 0) if m.any()]
    return sum(parts) / len(parts)


def _object_accuracy(head: str, logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy on the patches that show something to name: object patches for colour and
    shape, textured patches (where readable) for surface, every patch for row and column."""
    keep = {"colour": labels > 0, "shape": labels > 0, "surface": labels >= 2}.get(
        head, labels != IGNORE
    )
    if not keep.any():
        return float("nan")
    return float((logits.argmax(-1) == labels)[keep].float().mean())
