"""A source whose LLaVA-JSON files are generated on first use into a cache directory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from mmfw.data.sources import JsonSource


def dataset_dir(generator, cache_dir: str | Path) -> Path:
    """``<cache>/synthetic/<name>-<hash of the generator's parameters and VERSION>``."""
    version = getattr(generator, "VERSION", 1)
    key = json.dumps(
        {"name": generator.name, "version": version, **generator.params}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir).expanduser() / "synthetic" / f"{generator.name}-{digest}"


def ensure_generated(generator, cache_dir: str | Path) -> Path:
    """Generate the dataset unless it exists; safe when several processes race."""
    target = dataset_dir(generator, cache_dir)
    if (target / "meta.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        generator.generate(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "meta.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class SyntheticSource(JsonSource):
    """One split of a generated dataset, used like any LLaVA-JSON source.

    Yaml keys:
      generator: the generator config (e.g. ``${synthetic}``, the shared task node).
      split: train | val | test.
      cache_dir: where generated datasets live (reused across runs; keyed by parameters).
      category, kind, weight, alpha, max_samples, epochs: as for any source.
    """

    def __init__(
        self,
        *,
        generator,
        split: str = "train",
        cache_dir: str,
        category: str = "general",
        kind: str = "single_image",
        weight: float | None = None,
        alpha: float | None = None,
        max_samples: int | None = None,
        epochs: float = 1.0,
    ) -> None:
        self.generator = generator
        self.split = split
        self.cache_dir = cache_dir
        root = dataset_dir(generator, cache_dir)
        super().__init__(
            path=str(root / f"{split}.json"),
            image_root=str(root),
            category=category,
            kind=kind,
            weight=weight,
            alpha=alpha,
            max_samples=max_samples,
            epochs=epochs,
        )

    def records(self) -> list[dict]:
        ensure_generated(self.generator, self.cache_dir)
        return super().records()

    def size_hint(self) -> int | None:
        """The split's configured size (``num_train``, ...), without generating the data."""
        if (dataset_dir(self.generator, self.cache_dir) / "meta.json").exists():
            return super().size_hint()
        size = self.generator.params.get(f"num_{self.split}")
        if size is None:
            return None
        return min(int(size), self.max_samples) if self.max_samples else int(size)
