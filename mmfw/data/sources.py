"""Data sources: where a mixture's records come from, and how much of the mixture each is."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmfw.data.record_index import IndexedRecords, estimate_record, is_indexed

KINDS = ("single_image", "multi_image", "text_only", "video")
# A file up to this size is indexed by the preflight to count its records (training reuses
# the cached index); a larger one is counted there only when its index is cached already.
COUNT_BYTES = 64 << 20


class JsonSource:
    path_kind = "file"  # what ``path`` names: a file, or (sharded sources) a folder
    accepts_urls = False  # whether ``path`` may be a remote URL (s3://, gs://)

    """Records of a LLaVA conversation JSON/JSONL file.

    Yaml keys:
      path: the ``.json`` (list) or ``.jsonl`` file.
      image_root: folder the records' ``image`` paths are relative to (default: the file's folder).
      category: the data category (MM1.5: general, text_rich, science, math, code, refer_ground,
        ...); ``alpha`` is relative to the category ``data.alpha_reference``.
      kind: single_image | multi_image | text_only | video, for ``data.kind_weights``.
      weight: sampling weight relative to the other sources (null: 1).
      alpha: MM1.5's α, the sampling weight relative to the reference category's total
        weight (use either weight or alpha).
      max_samples: use only the first N records (null: all).
      epochs: how many times the source's records count in one epoch of the mixture
        (repetition; 0.5 = half of them).
    """

    def __init__(
        self,
        *,
        path: str,
        image_root: str | None = None,
        category: str = "general",
        kind: str = "single_image",
        weight: float | None = None,
        alpha: float | None = None,
        max_samples: int | None = None,
        epochs: float = 1.0,
    ) -> None:
        if weight is not None and alpha is not None:
            raise ValueError(
                f"data source {path}: give weight or alpha, not both (weight={weight}, alpha={alpha})"
            )
        for key, value in (("weight", weight), ("alpha", alpha)):
            if value is not None and value < 0:
                raise ValueError(f"data source {path}: {key}={value} must be >= 0")
        if kind not in KINDS:
            raise ValueError(f"data source {path}: kind={kind!r}: use one of {KINDS}")
        if epochs <= 0:
            raise ValueError(f"data source {path}: epochs={epochs} must be > 0")
        self._path = path
        self._image_root = image_root
        self.category = str(category)
        self.kind = kind
        self.weight = None if weight is None else float(weight)
        self.alpha = None if alpha is None else float(alpha)
        self.max_samples = max_samples
        self.epochs = float(epochs)
        self._records: IndexedRecords | None = None

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def image_root(self) -> Path:
        return Path(self._image_root) if self._image_root else self.path.parent

    def records(self) -> IndexedRecords:
        """Raw records, read lazily through a cached index of the file (see
        ``mmfw.data.record_index``); validated later, one by one."""
        if self._records is None:
            self._records = IndexedRecords(self.path, self.max_samples or None)
        return self._records

    def size_hint(self) -> int | None:
        """The number of records, when it is cheap to know before the data is built (the
        preflight checks that one global batch fits the data); None: not known yet."""
        if self._records is not None:
            return len(self._records)
        try:
            if self.path.stat().st_size > COUNT_BYTES and not is_indexed(self.path):
                return None
            return len(self.records())
        except (OSError, ValueError):  # reported with the file named when the data is built
            return None

    def estimates(self):
        """(text characters, images; -1 for a video) per record, without reading records."""
        records = self.records()
        if isinstance(records, IndexedRecords):
            return records.estimates()
        pairs = np.array([estimate_record(r) for r in records], dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]
