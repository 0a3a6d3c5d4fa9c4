"""Offline wandb runs: the binary ``run-<id>.wandb`` transaction log (LevelDB log format,
read by :func:`read_log`) and the ``offline-run-*`` / ``run-*`` folders that hold it. This wandb
writes no ``config.yaml`` or ``wandb-summary.json`` offline, so config, summary, history and
exit code exist only in that log; parts of a resumed run (same id) are merged, a log without an
exit record is running or gone (:data:`STALE_S`), a ``run.json`` beside an mmfw run supplies its
status, and ``--filters`` are applied with :func:`mmfw.report.wandb_filters.matches`.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmfw.report.wandb_filters import matches
from mmfw.report.wandb_run import WandbRun, loss_points

STALE_S = 300  # an offline log untouched this long without an exit record: the run is gone
_BLOCK = 32 * 1024  # the LevelDB log format wandb writes: 32 KiB blocks, 7-byte record headers


def read_log(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` transaction log (``wandb_internal_pb2.Record``). A torn tail
    (a run still writing, or killed mid-write) ends the scan instead of failing it."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a wandb transaction log (no :W&B header)")
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's last bytes, too few for a header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, n, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7 : pos + 7 + n]
        if len(chunk) < n or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            return
        pos += 7 + n
        buf = chunk if kind in (1, 2) else buf + chunk  # full, first | middle, last
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def find_offline(root: Path) -> list[Path]:
    """wandb run folders (``offline-run-*``, ``run-*`` holding a ``.wandb`` log) under ``root``."""
    found = []
    for here, dirs, files in os.walk(root):
        name = Path(here).name
        if name.startswith(("offline-run-", "run-")) and any(f.endswith(".wandb") for f in files):
            found.append(Path(here))
            dirs.clear()
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found)


def _apply(target: dict, items: Any, remove: Any = ()) -> None:
    """Config / summary updates (``key`` or a ``nested_key`` path, JSON values) into ``target``."""
    for item in items:
        path = list(item.nested_key) or [item.key]
        node = target
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = json.loads(item.value_json)
    for item in remove:
        path = list(item.nested_key) or [item.key]
        node = target
        for part in path[:-1]:
            node = node.get(part) if isinstance(node.get(part), dict) else {}
        node.pop(path[-1], None)


def _read_part(folder: Path) -> tuple[float, WandbRun, int | None, bool]:
    """One offline folder: (start time, run, exit code or None, preempting seen)."""
    log = next(f for f in sorted(folder.iterdir()) if f.suffix == ".wandb")
    run = WandbRun(id="", name="", project="", source=str(folder))
    start, exit_code, preempting = 0.0, None, False
    for rec in read_log(log):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.id, run.project, run.entity = r.run_id, r.project, r.entity
            run.name, run.group, run.tags = r.display_name, r.run_group, list(r.tags)
            start = r.start_time.seconds + r.start_time.nanos / 1e9
            _apply(run.config, r.config.update)
            _apply(run.summary, r.summary.update)
        elif kind == "config":
            _apply(run.config, rec.config.update, rec.config.remove)
        elif kind == "summary":
            _apply(run.summary, rec.summary.update, rec.summary.remove)
        elif kind == "history":
            row = {
                "/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in rec.history.item
            }
            run.history += loss_points([row])
        elif kind == "exit":
            exit_code = int(rec.exit.exit_code)
        elif kind == "preempting":
            preempting = True
    if not run.id:  # no run record yet: the id is in the log's name, run-<id>.wandb
        run.id = run.name = log.stem.removeprefix("run-")
    return start, run, exit_code, preempting


def offline_run(folders: list[Path]) -> WandbRun:
    """One run from its offline folders (several when it was resumed), oldest first."""
    parts = sorted((_read_part(f) for f in folders), key=lambda p: (p[0], str(p[1].source)))
    run = parts[0][1]
    for _, later, _, _ in parts[1:]:
        run.config.update(later.config)
        run.summary.update(later.summary)
        if later.history:  # the resumed run logs again from its checkpoint's step
            first = later.history[0][0]
            run.history = [p for p in run.history if p[0] < first] + later.history
        run.tags, run.group = later.tags or run.tags, later.group or run.group
        run.name = later.name or run.name
    _, last, exit_code, preempting = parts[-1]
    run.source = ", ".join(str(f) for f in sorted(folders))
    if exit_code is not None:
        run.state = "finished" if exit_code == 0 else "failed"
        run.error = None if exit_code == 0 else f"wandb exit code {exit_code}"
    else:
        log = next(f for f in Path(last.source).iterdir() if f.suffix == ".wandb")
        idle = time.time() - log.stat().st_mtime
        run.state = "preempted" if preempting else ("running" if idle < STALE_S else "crashed")
        if run.state != "running":
            run.error = f"no exit record in the wandb log (last written {idle / 60:.0f} min ago)"
    _from_run_json(run, Path(last.source))
    return run


def _from_run_json(run: WandbRun, folder: Path) -> None:
    """An mmfw run dir holds its wandb folder in ``wandb/``: its run.json knows the status
    (mmfw ends a failed run's wandb run with exit code 0, so wandb calls it finished)."""
    record_file = folder.parent.parent / "run.json"
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        return
    if isinstance(record, dict) and record.get("wandb_id") == run.id and record.get("status"):
        run.status, run.error = record["status"], record.get("error")


def offline_runs(root: Path, path: str, filters: dict | None) -> list[WandbRun]:
    """Runs of project ``path`` (``[entity/]project``) in offline folders under ``root``."""
    entity, _, project = path.rpartition("/")
    by_id: dict[str, list[Path]] = {}
    for folder in find_offline(root):
        by_id.setdefault(_run_id(folder), []).append(folder)
    from google.protobuf.message import DecodeError

    runs = []
    for folders in by_id.values():
        try:
            runs.append(offline_run(folders))
        except (OSError, ValueError, DecodeError) as e:  # one unreadable run; the rest count
            where = ", ".join(map(str, folders))
            print(f"mmfw-report: warning: skipped {where}: {e}", file=sys.stderr)
    runs = [r for r in runs if r.project == project and (not entity or r.entity in ("", entity))]
    return [r for r in runs if matches(r, filters or {})]


def _run_id(folder: Path) -> str:
    return next(f.stem.removeprefix("run-") for f in folder.iterdir() if f.suffix == ".wandb")
