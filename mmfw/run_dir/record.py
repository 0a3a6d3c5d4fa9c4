"""``run.json``: what a run directory holds and how it ended (running / finished / failed /
interrupted), kept current while the run lives."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "lightning", "transformers", "deepspeed", "peft", "hydra-core")


def _versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


class RunRecord:
    """Reads and writes ``<run dir>/run.json`` atomically (rank 0 only writes)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "run.json"

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".run.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, self.path)

    def start(self, overrides: list[str], world: int, **extra) -> None:
        """A new attempt: a fresh record, or one more entry in ``attempts`` of an existing run
        (whose first overrides, start time and wandb id stay)."""
        from mmfw import __version__

        previous = self.read()
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
        attempts = _attempts(previous)
        attempts.append(
            {
                "started": now,
                "ended": None,
                "command": command,
                "overrides": list(overrides),
                "status": "running",
                "error": None,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                # What the run was before this attempt: a failed attempt puts it back.
                "run_status_before": previous.get("status"),
                "run_ended_before": previous.get("ended"),
            }
        )
        self.write(
            {
                **previous,
                "status": "running",
                "started": previous.get("started") or now,
                "ended": None,
                "command": previous.get("command") or command,
                "overrides": previous.get("overrides", list(overrides)),
                "mmfw_version": __version__,
                "git_commit": _git_commit(),
                "packages": _versions(),
                "python": platform.python_version(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "world_size": world,
                "attempts": attempts,
                "error": None,
                **extra,
            }
        )

    def update(self, **fields) -> None:
        data = self.read()
        data.update(fields)
        self.write(data)

    def finish(self, status: str, error: str | None = None, **extra) -> None:
        """End the current attempt. A run that had finished before a failed or interrupted
        attempt stays finished (the attempt keeps the error)."""
        data = self.read()
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        attempts = _attempts(data)
        before = attempts[-1].get("run_status_before") if attempts else None
        if attempts:
            attempts[-1].update(status=status, ended=now, error=error)
        if status != "finished" and before == "finished":
            data.update(
                status="finished",
                ended=attempts[-1].get("run_ended_before"),
                error=None,
                attempts=attempts,
            )
        else:
            data.update(status=status, ended=now, error=error, attempts=attempts, **extra)
        self.write(data)

    def attempt_count(self) -> int:
        return len(_attempts(self.read()))

    @property
    def status(self) -> str | None:
        return self.read().get("status")


def _attempts(data: dict) -> list[dict]:
    """``attempts`` as a list (records before 0.2 kept a count; their history is one entry)."""
    attempts = data.get("attempts")
    if isinstance(attempts, list):
        return [dict(a) for a in attempts]
    if not data:
        return []
    return [
        {
            "started": data.get("started"),
            "ended": data.get("ended"),
            "overrides": data.get("overrides", []),
            "status": data.get("status"),
            "error": data.get("error"),
        }
    ]
