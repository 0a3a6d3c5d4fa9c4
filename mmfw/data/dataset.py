"""Map-style dataset over the records of one or more sources."""

from __future__ import annotations

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
        self.index = [(s, r) for s, src in enumerate(sources) for r in range(len(src.records()))]

    def __len__(self) -> int:
        return len(self.index)

    def source_sizes(self) -> list[int]:
        return [len(src.records()) for src in self.sources]

    def __getitem__(self, i: int) -> RawItem | Skipped:
        s, r = self.index[i]
        src = self.sources[s]
        raw = src.records()[r]
        try:
            return RawItem(parse_record(raw), src.image_root, src.path, r, s)
        except RecordError as e:
            rid = raw.get("id") if isinstance(raw, dict) else None
            if self.strict:
                raise strict_error(src.path, r, rid, e) from e
            return Skipped(e.reason, where(src.path, r, rid), s)
