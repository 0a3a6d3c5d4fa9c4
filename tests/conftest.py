"""Shared test setup: offline everything, a session cache, tiny configs, CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="mmfw-tests-"))
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(_SESSION_TMP / "wandb"),
        "WANDB_CACHE_DIR": str(_SESSION_TMP / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(_SESSION_TMP / "wandb-config"),
        "WANDB_DATA_DIR": str(_SESSION_TMP / "wandb-data"),
        "MMFW_CACHE": str(_SESSION_TMP / "cache"),
        "TOKENIZERS_PARALLELISM": "false",
    }
)

REPO = Path(__file__).resolve().parents[1]
# mmfw's console scripts: beside this Python, or (the GPU check, where mmfw is imported from
# the repository rather than installed) in MMFW_BIN.
BIN = Path(os.environ.get("MMFW_BIN") or Path(sys.executable).parent)

# Small synthetic task for tests: a few seconds to generate, same code path as the demo.
SMALL_TASK = [
    "synthetic.num_train=96",
    "synthetic.num_val=16",
    "synthetic.num_test=24",
]


def run_cli(
    name: str, *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run an installed console script (mmfw-train, ...) as a subprocess."""
    proc = subprocess.run(
        [str(BIN / name), *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP
