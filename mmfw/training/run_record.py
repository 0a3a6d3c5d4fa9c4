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
        from mmfw import __version__

        previous = self.read()
        self.write(
            {
                "status": "running",
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "ended": None,
                "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
                "overrides": list(overrides),
                "mmfw_version": __version__,
                "git_commit": _git_commit(),
                "packages": _versions(),
                "python": platform.python_version(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "world_size": world,
                "attempts": int(previous.get("attempts", 0)) + 1,
                "error": None,
                **extra,
            }
        )

    def update(self, **fields) -> None:
        data = self.read()
        data.update(fields)
        self.write(data)

    def finish(self, status: str, error: str | None = None, **extra) -> None:
        data = self.read()
        data.update(
            {
                "status": status,
                "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "error": error,
                **extra,
            }
        )
        self.write(data)

    @property
    def status(self) -> str | None:
        return self.read().get("status")
