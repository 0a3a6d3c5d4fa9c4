"""Map-style dataset over the records of one or more sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from mmfw.data.collate import Skipped
from mmfw.data.formats.llava_json import Record, RecordError, parse_record
from mmfw.data.sources import JsonSource


@dataclass
class RawItem:
    """A validated record and where it came from; the collator turns it into tokens."""

    record: Record
    image_root: Path
    source_path: Path
    index: int


def strict_error(path: Path, index: int, record_id, err: RecordError) -> ValueError:
    """The error of strict mode: file, record index, id, reason and the fix."""
    return ValueError(
        f"{path}: record {index} (id={record_id!r}) is unusable [{err.reason}]: {err}. "
        "Fix or remove the record, or set data.strict=false to skip and count such records."
    )


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
            return RawItem(parse_record(raw), src.image_root, src.path, r)
        except RecordError as e:
            if self.strict:
                rid = raw.get("id") if isinstance(raw, dict) else None
                raise strict_error(src.path, r, rid, e) from e
            return Skipped(e.reason)
