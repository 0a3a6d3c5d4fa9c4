"""Records that cannot be used: skipped and counted by reason, or an error in strict mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Skipped:
    """Placeholder for a record the pipeline could not use; counted, never trained on.
    ``where`` names it (``file:record id=...``) for the examples in warnings."""

    reason: str
    where: str = ""
    source: int = -1  # index of its source in the mixture


def where(path: Path, index: int, record_id) -> str:
    return f"{path}:{index}" + (f" (id={record_id!r})" if record_id is not None else "")


def strict_error(path: Path, index: int, record_id, err) -> ValueError:
    """The error of strict mode: file, record index, id, reason and the fix."""
    return ValueError(
        f"{path}: record {index} (id={record_id!r}) is unusable [{err.reason}]: {err}. "
        "Fix or remove the record, or set data.strict=false to skip and count such records."
    )
