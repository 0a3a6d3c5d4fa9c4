"""A compact index over a LLaVA JSON/JSONL file, so records are read lazily.

LLaVA-665K is ~1 GB of JSON; ``json.load`` turns it into millions of Python objects in every
process that touches it (each DataLoader worker, each rank). The index is built once per file
version by one streaming pass (bounded memory) and saved as ``.npy`` arrays that every process
maps read-only: where each record starts and ends in the file, how many characters of text it
has (UTF-8 bytes) and how many images (a video counts as -1). A record is then one ``seek`` + ``json.loads``.

The cache lives in ``$MMFW_CACHE/index`` (default ``~/.cache/mmfw/index``), keyed by the
file's absolute path, size and modification time; a changed file gets a new index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mmfw.data.formats.llava_json import RecordError

CHUNK = 16 << 20  # bytes read per step of the scan; a longer record just grows the buffer
FIELDS = ("start", "end", "chars", "images")
VIDEO = -1


def cache_root() -> Path:
    return Path(os.environ.get("MMFW_CACHE", Path.home() / ".cache" / "mmfw")) / "index"


def _key(path: Path) -> str:
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return f"{path.name}-{hashlib.sha1(ident.encode()).hexdigest()[:16]}"


def is_indexed(path: Path) -> bool:
    """True when this version of the file already has its index in the cache."""
    return (cache_root() / _key(path) / f"{FIELDS[-1]}.npy").exists()


def estimate_record(raw) -> tuple[int, int]:
    """(text length, images) of a raw record; -1 images for a video."""
    if not isinstance(raw, dict):
        return 0, 0
    chars = 0
    turns = raw.get("conversations") or raw.get("messages") or []
    if isinstance(turns, list):
        for t in turns:
            if not isinstance(t, dict):
                continue
            content = t.get("value", t.get("content"))
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        chars += len(part["text"])
    if raw.get("video"):
        return chars, VIDEO
    image = raw.get("image", raw.get("images"))
    if isinstance(image, list):
        return chars, len(image)
    return chars, int(bool(image))


def _line_of(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        return f.read(offset).count(b"\n") + 1


def _scan_jsonl(path: Path) -> Iterator[tuple[int, int, int, int]]:
    at = 0
    with open(path, "rb") as f:
        for line in f:
            end = at + len(line)
            body = line.strip()
            if body:
                try:
                    # Decoded like the list scan: text lengths are UTF-8 bytes in both.
                    chars, images = estimate_record(json.loads(body.decode("latin-1")))
                except json.JSONDecodeError:
                    chars, images = 0, 0  # read again lazily and skipped as bad_json
                yield at, end, chars, images
            at = end


def _scan_json_list(path: Path) -> Iterator[tuple[int, int, int, int]]:
    """Records of a top-level JSON list, one at a time. The bytes are decoded as Latin-1 so
    that string positions are byte offsets (UTF-8 never uses ASCII bytes inside a multi-byte
    character, so the JSON structure reads the same)."""
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        buf, base, eof = "", 0, False

        def more() -> bool:
            nonlocal buf, eof
            chunk = f.read(CHUNK)
            eof = not chunk
            buf += chunk.decode("latin-1")
            return bool(chunk)

        def skip_space(pos: int) -> int:
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf) or not more():
                    return pos

        def fail(pos: int, what: str):
            line = _line_of(path, base + pos)
            raise ValueError(f"{path}: invalid JSON at line {line} ({what})")

        pos = skip_space(0)
        if pos >= len(buf) or buf[pos] != "[":
            if pos < len(buf) and buf[pos] == "{":
                raise ValueError(f"{path}: expected a JSON list of records, got dict")
            fail(pos, "expected '['")
        pos = skip_space(pos + 1)
        if pos < len(buf) and buf[pos] == "]":
            return
        while True:
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    if eof or not more():
                        fail(e.pos, e.msg)
            chars, images = estimate_record(obj)
            yield base + pos, base + end, chars, images
            pos = skip_space(end)
            if pos >= len(buf):
                fail(pos, "the list is not closed")
            if buf[pos] == "]":
                return
            if buf[pos] != ",":
                fail(pos, "expected ',' or ']'")
            pos = skip_space(pos + 1)
            if pos > CHUNK:  # drop what is behind us, keep memory bounded
                buf, base, pos = buf[pos:], base + pos, 0


def build_index(path: Path, out: Path) -> None:
    """Scan ``path`` and write the index arrays into the folder ``out`` (atomically)."""
    scan = _scan_jsonl if path.suffix == ".jsonl" else _scan_json_list
    rows = np.fromiter(scan(path), dtype=np.dtype((np.int64, 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for k, name in enumerate(FIELDS):
            dtype = np.int64 if k < 2 else np.int32
            np.save(
                tmp / f"{name}.npy", rows[:, k].astype(dtype) if len(rows) else np.zeros(0, dtype)
            )
        try:
            os.replace(tmp, out)
        except OSError:  # another process published the same index first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class IndexedRecords(Sequence):
    """The records of one JSON/JSONL file, read on access through the cached index."""

    def __init__(self, path: str | Path, limit: int | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"data file {path} does not exist (check data.sources.*.path)")
        self.path = path
        self.limit = limit
        self.index_dir = cache_root() / _key(path)
        if not (self.index_dir / f"{FIELDS[-1]}.npy").exists():
            build_index(path, self.index_dir)
        self._map()

    def _map(self) -> None:
        arrays = {n: np.load(self.index_dir / f"{n}.npy", mmap_mode="r") for n in FIELDS}
        n = len(arrays["start"]) if self.limit is None else min(self.limit, len(arrays["start"]))
        self.start, self.end = arrays["start"][:n], arrays["end"][:n]
        self.chars, self.images = arrays["chars"][:n], arrays["images"][:n]
        self._file = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.start)

    def _handle(self):
        if self._file is None or self._pid != os.getpid():  # a forked worker opens its own
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open for lazy reads
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        f = self._handle()
        f.seek(int(self.start[i]))
        body = f.read(int(self.end[i]) - int(self.start[i]))
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError("bad_json", f"the record is not valid JSON ({e})") from e

    def __getstate__(self) -> dict:
        # A spawned worker maps the index itself instead of receiving copies of the arrays.
        return {"path": self.path, "limit": self.limit, "index_dir": self.index_dir}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._map()

    def estimates(self) -> tuple[np.ndarray, np.ndarray]:
        """(text UTF-8 bytes, images; -1 for a video) per record, from the index."""
        return np.asarray(self.chars), np.asarray(self.images)
