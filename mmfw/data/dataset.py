"""Map-style dataset over the records of one or more sources."""

from __future__ import annotations

from torch.utils.data import Dataset

from mmfw.data.collate import Skipped
from mmfw.data.formats.llava_json import RecordError, parse_record
from mmfw.data.processor import Sample, SampleProcessor
from mmfw.data.sources import JsonSource


class ConversationDataset(Dataset):
    """Item ``i`` is a tokenised :class:`Sample`, or :class:`Skipped` for a bad record.

    With ``strict`` a bad record raises, naming the file, the record index, its id and the fix.
    """

    def __init__(
        self, sources: list[JsonSource], processor: SampleProcessor, strict: bool = False
    ) -> None:
        self.sources = sources
        self.processor = processor
        self.strict = strict
        self.index = [(s, r) for s, src in enumerate(sources) for r in range(len(src.records()))]

    def __len__(self) -> int:
        return len(self.index)

    def source_sizes(self) -> list[int]:
        return [len(src.records()) for src in self.sources]

    def __getitem__(self, i: int) -> Sample | Skipped:
        s, r = self.index[i]
        src = self.sources[s]
        raw = src.records()[r]
        try:
            record = parse_record(raw)
            return self.processor.training_sample(record, src.image_root)
        except RecordError as e:
            if self.strict:
                rid = raw.get("id") if isinstance(raw, dict) else None
                raise ValueError(
                    f"{src.path}: record {r} (id={rid!r}) is unusable [{e.reason}]: {e}. "
                    "Fix or remove the record, or set data.strict=false to skip and count such records."
                ) from e
            return Skipped(e.reason)
