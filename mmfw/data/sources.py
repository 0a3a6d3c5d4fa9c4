"""Data sources: where a mixture's records come from."""

from __future__ import annotations

from pathlib import Path

from mmfw.data.formats.llava_json import read_json_records


class JsonSource:
    """Records of a LLaVA conversation JSON/JSONL file.

    Yaml keys:
      path: the ``.json`` (list) or ``.jsonl`` file.
      image_root: folder the records' ``image`` paths are relative to (default: the file's folder).
      weight: sampling weight relative to the other sources of the mixture.
      max_samples: use only the first N records (null: all).
    """

    def __init__(
        self,
        *,
        path: str,
        image_root: str | None = None,
        weight: float = 1.0,
        max_samples: int | None = None,
    ) -> None:
        if weight < 0:
            raise ValueError(f"data source weight={weight} must be >= 0")
        self._path = path
        self._image_root = image_root
        self.weight = float(weight)
        self.max_samples = max_samples
        self._records: list[dict] | None = None

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def image_root(self) -> Path:
        return Path(self._image_root) if self._image_root else self.path.parent

    def records(self) -> list[dict]:
        """Raw records (read once, then cached); validated later, one by one."""
        if self._records is None:
            records = read_json_records(self.path)
            self._records = records[: self.max_samples] if self.max_samples else records
        return self._records
