"""Records that cannot be used: skipped and counted by reason, or an error in strict mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MISSING_FILE = ("missing_image", "missing_video")


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


def named_files(record) -> list[str]:
    """The image (or video) files a record names, relative to its source's ``image_root``
    (embedded images, as in a TSV, are not files)."""
    if record.video:
        return [str(record.video)]
    return [str(p) for p in record.images if isinstance(p, str)]


def all_images_missing(key: str, source, named: int, example: str) -> str:
    """The error of a source whose every probed record that names an image misses it."""
    root = source.image_root
    return (
        f"{key} ({source.path}): every probed record that names an image fails with "
        f"missing_image under {key}.image_root={str(root)!r}: check image_root (the folder the "
        f"records' image paths are relative to; null: the file's folder); {named} of {named} "
        f"image records missing, e.g. {example}"
    )
