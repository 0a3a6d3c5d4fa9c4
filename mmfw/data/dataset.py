"""Map-style dataset over the records of one or more sources."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from mmfw.data.formats.llava_json import Record, RecordError, parse_record
from mmfw.data.skips import Skipped, strict_error, where
from mmfw.data.sources import JsonSource


@dataclass
class RawItem:
    """A validated record and where it came from; the collator turns it into tokens."""

    record: Record
    image_root: Path
    source_path: Path
    index: int
    source: int = 0  # index of its source in the mixture


class ConversationDataset(Dataset):
    """Item ``i`` is a :class:`RawItem`, or :class:`Skipped` for a record that fails validation.

    Images and tokens are produced by the collator, so that choices shared by a batch (e.g.
    OtterHD's per-batch image size) are possible. With ``strict`` a bad record raises,
    naming the file, the record index, its id and the fix.
    """

    def __init__(self, sources: list[JsonSource], strict: bool = False) -> None:
        self.sources = sources
        self.strict = strict
        # Cumulative sizes, not a list of (source, record) pairs: millions of records cost
        # nothing here, and each worker reads its records lazily.
        self.offsets = [0]
        for src in sources:
            self.offsets.append(self.offsets[-1] + len(src.records()))

    def __len__(self) -> int:
        return self.offsets[-1]

    def source_sizes(self) -> list[int]:
        return [len(src.records()) for src in self.sources]

    def __getitem__(self, i: int) -> RawItem | Skipped:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = bisect.bisect_right(self.offsets, i) - 1
        r = i - self.offsets[s]
        src = self.sources[s]
        raw = None
        try:
            raw = src.records()[r]
            return RawItem(parse_record(raw), src.image_root, src.path, r, s)
        except RecordError as e:
            rid = raw.get("id") if isinstance(raw, dict) else None
            if self.strict:
                raise strict_error(src.path, r, rid, e) from e
            return Skipped(e.reason, where(src.path, r, rid), s)
