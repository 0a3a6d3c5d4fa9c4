"""Sharded sources: LLaVA records with their image bytes in litdata chunks.

For tens of millions of samples, a folder of image files and one giant JSON stop scaling
(inodes, open() per image, remote storage). ``mmfw-data convert`` writes each record, its
images embedded, into litdata's chunked format (``optimize``); ``ShardedSource`` reads them
through litdata's ``StreamingDataset`` (local folders, or ``s3://`` / ``gs://`` with the
chunks downloaded and cached on demand). Which record each rank and worker reads, and where a
resumed run continues, stays mmfw's sampler (``mmfw.data.sampler``): every rank gets disjoint
records of each global batch, workers take disjoint micro-batches, and the position is saved in
whole optimizer steps, so a resume mid-epoch continues exactly.

Each item: ``record`` (the record as JSON text), ``images`` (the images' bytes, framed; an
image that could not be read at conversion keeps its path in the record and is skipped as
``missing_image`` in training) and ``index`` (the record's place in the converted file).
A sidecar ``mmfw_estimates.npy`` holds (text bytes, images) per record for length grouping.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from mmfw.data.formats.llava_json import RecordError
from mmfw.data.record_index import IndexedRecords, estimate_record
from mmfw.data.sources import JsonSource

ESTIMATES = "mmfw_estimates.npy"


def pack_images(blobs: list[bytes | None]) -> bytes:
    """Images as one byte string: count, then each length (-1: not embedded), then the bytes."""
    head = struct.pack(
        f"<q{len(blobs)}q", len(blobs), *[-1 if b is None else len(b) for b in blobs]
    )
    return head + b"".join(b for b in blobs if b is not None)


def unpack_images(data: bytes) -> list[bytes | None]:
    if not data:
        return []
    data = bytes(data)  # litdata hands bytes back as a memoryview
    (n,) = struct.unpack_from("<q", data)
    sizes = struct.unpack_from(f"<{n}q", data, 8)
    at, out = 8 + 8 * n, []
    for size in sizes:
        if size < 0:
            out.append(None)
            continue
        out.append(data[at : at + size])
        at += size
    return out


def _image_paths(raw) -> list:
    if not isinstance(raw, dict):
        return []
    image = raw.get("image", raw.get("images"))
    if isinstance(image, str):
        return [image]
    return list(image) if isinstance(image, list) else []


_OPEN: dict[Path, IndexedRecords] = {}  # one index per converting process


def _convert_one(i: int, source: Path, image_root: Path) -> dict:
    records = _OPEN.get(source) or _OPEN.setdefault(source, IndexedRecords(source))
    try:
        raw = records[i]
        text = json.dumps(raw, ensure_ascii=False)
    except RecordError:
        raw, text = None, '"<bad json>"'
    blobs = []
    for rel in _image_paths(raw):
        try:
            blobs.append((image_root / rel).read_bytes() if isinstance(rel, str) else None)
        except OSError:
            blobs.append(None)
    return {"index": i, "record": text, "images": pack_images(blobs)}


def convert(
    source: str | Path,
    out: str | Path,
    image_root: str | Path | None = None,
    chunk_bytes: str = "64MB",
    workers: int = 1,
    overwrite: bool = False,
) -> dict:
    """Write the records of a LLaVA JSON/JSONL file, images embedded, as litdata chunks in
    ``out``. Returns counts (records, images embedded, images not found)."""
    from litdata import optimize

    source, out = Path(source), Path(out)
    root = Path(image_root) if image_root else source.parent
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty: choose a new folder or pass --overwrite")
    records = IndexedRecords(source)
    n = len(records)
    if n == 0:
        raise ValueError(f"{source} holds no records")
    optimize(
        fn=partial(_convert_one, source=source, image_root=root),
        inputs=list(range(n)),
        output_dir=str(out),
        chunk_bytes=chunk_bytes,
        num_workers=max(1, int(workers)),
        mode="overwrite" if overwrite else None,
        # One record at a time, in file order: the index in a skip message is the file's.
        keep_data_ordered=True,
        verbose=False,
    )
    chars, images = records.estimates()
    np.save(
        out / ESTIMATES, np.stack([np.asarray(chars), np.asarray(images)], axis=1).astype(np.int64)
    )
    embedded = missing = 0
    for i in range(n):
        try:
            paths = _image_paths(records[i])
        except RecordError:
            continue
        for rel in paths:
            if isinstance(rel, str) and (root / rel).is_file():
                embedded += 1
            else:
                missing += 1
    return {"records": n, "images_embedded": embedded, "images_missing": missing}


class ShardedRecords(Sequence):
    """Records of a converted folder, read through litdata on access (one reader per process)."""

    def __init__(self, path: str, limit: int | None = None) -> None:
        self.path = path
        self.limit = limit
        self._ds = None
        size = len(self._dataset())
        self._len = min(size, limit) if limit else size

    def _dataset(self):
        if self._ds is None:
            from litdata import StreamingDataset

            self._ds = StreamingDataset(self.path)
        return self._ds

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        item = self._dataset()[i]
        try:
            raw = json.loads(item["record"])
        except json.JSONDecodeError as e:
            raise RecordError("bad_json", f"the record is not valid JSON ({e})") from e
        if not isinstance(raw, dict):
            raise RecordError("bad_json", "the record was not valid JSON in the source file")
        blobs = unpack_images(item["images"])
        if blobs:
            paths = _image_paths(raw)
            images = [b if b is not None else p for b, p in zip(blobs, paths)]
            raw.pop("images", None)
            raw["image"] = images
        return raw

    def __getstate__(self) -> dict:
        return {"path": self.path, "limit": self.limit, "_ds": None, "_len": self._len}

    def estimates(self) -> tuple[np.ndarray, np.ndarray]:
        sidecar = Path(self.path) / ESTIMATES
        if sidecar.exists():
            table = np.load(sidecar)[: len(self)]
            return table[:, 0], table[:, 1]
        pairs = np.array([estimate_record(self[i]) for i in range(len(self))]).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]


class ShardedSource(JsonSource):
    path_kind = "folder"
    accepts_urls = True

    """A folder written by ``mmfw-data convert`` (or an ``s3://`` / ``gs://`` URL of one).

    Yaml keys: those of any source (path: the folder, image_root: where not-embedded files
    such as videos are, category, kind, weight or alpha, max_samples, epochs).
    """

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def image_root(self) -> Path:
        return Path(self._image_root) if self._image_root else Path(self._path)

    def size_hint(self) -> int | None:
        """The records a local converted folder holds, from its ``index.json`` (litdata's
        chunk sizes, no record read); a remote one is known once read."""
        if self._records is not None:
            return len(self._records)
        index = Path(self._path) / "index.json"
        if "://" in self._path or not index.exists():
            return None
        try:
            chunks = json.loads(index.read_text()).get("chunks", [])
            size = sum(int(c["chunk_size"]) for c in chunks)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # reported with the folder named when the data is built
        return min(size, self.max_samples) if self.max_samples else size

    def records(self) -> ShardedRecords:
        if self._records is None:
            if "://" not in self._path and not (Path(self._path) / "index.json").exists():
                raise FileNotFoundError(
                    f"{self._path} is not a converted source (no index.json): write one with "
                    f"`mmfw-data convert <llava json> {self._path}`"
                )
            self._records = ShardedRecords(self._path, self.max_samples or None)
        return self._records

    def estimates(self):
        return self.records().estimates()
