"""Find runs under the given directories and read their config, choices and metrics."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmfw.eval.scores import is_score


@dataclass
class RunInfo:
    """What the report needs of one run (flattened config keys, group choices, metrics)."""

    path: Path
    config: dict[str, Any]
    choices: dict[str, str]
    overrides: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "unknown"  # run.json: running | finished | failed | interrupted
    error: str | None = None
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)  # benchmark → cat → acc


def is_run(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").exists() and (
        (path / "metrics.json").exists()
        or (path / "checkpoints").is_dir()
        or (path / "run.json").exists()
    )


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories at or below ``paths`` (a run's own subfolders are not searched)."""
    found: list[Path] = []

    def walk(p: Path) -> None:
        if is_run(p):
            found.append(p)
            return
        for child in sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")):
            walk(child)

    for p in map(Path, paths):
        if not p.is_dir():
            raise FileNotFoundError(f"{p} is not a directory")
        walk(p)
    return sorted(dict.fromkeys(found), key=_natural_key)


def _natural_key(p: Path) -> list:
    return [int(s) if s.isdigit() else s for s in p.parts]


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts → ``{"a.b.c": value}``; lists stay values (compared as a whole)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def load_run_info(path: Path) -> RunInfo:
    config = yaml.safe_load((path / ".hydra" / "config.yaml").read_text()) or {}
    hydra_file = path / ".hydra" / "hydra.yaml"
    choices: dict[str, str] = {}
    if hydra_file.exists():
        hydra_cfg = yaml.safe_load(hydra_file.read_text()) or {}
        raw = hydra_cfg.get("hydra", {}).get("runtime", {}).get("choices", {}) or {}
        choices = {k: str(v) for k, v in raw.items() if not k.startswith("hydra/")}
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    metrics: dict[str, Any] = {}
    per_category: dict[str, dict[str, float]] = {}
    if (path / "metrics.json").exists():
        # A half-written file: the run is reported without its numbers.
        with contextlib.suppress(ValueError):
            metrics.update(json.loads((path / "metrics.json").read_text()))
    for mfile in sorted((path / "eval").glob("*/metrics.json")):
        try:
            data = json.loads(mfile.read_text())
        except ValueError:
            continue
        for key, value in data.items():
            if is_score(key) and isinstance(value, int | float):
                metrics[f"{mfile.parent.name}/{key}"] = value
        if isinstance(data.get("per_category"), dict) and len(data["per_category"]) > 1:
            per_category[mfile.parent.name] = dict(data["per_category"])
    record = {}
    if (path / "run.json").exists():
        try:
            record = json.loads((path / "run.json").read_text())
        except ValueError:
            record = {"status": "unknown", "error": "run.json is not valid JSON"}
    status = record.get("status") or ("finished" if (path / "metrics.json").exists() else "unknown")
    return RunInfo(
        path,
        flatten(config),
        choices,
        list(overrides or []),
        metrics,
        status,
        record.get("error"),
        per_category,
    )
