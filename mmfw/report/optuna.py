"""The report's Optuna section: a sweep dir's ``optimization_results.yaml`` (written by
hydra-optuna-sweeper) with the study's direction, best trial, and its trials ranked."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmfw.report.collect import RunInfo
from mmfw.report.diff import value_of
from mmfw.report.render import _fmt

RESULTS = "optimization_results.yaml"
Section = tuple[str, list[str], list[list[str]]]


@dataclass
class Study:
    """One Optuna sweep: its results file, the runs (trials) under it and what they optimise."""

    sweep_dir: Path
    best_params: dict[str, Any]
    best_value: Any
    direction: str | list[str] | None
    objective: str | None  # the metrics key the trials returned
    runs: list[RunInfo] = field(default_factory=list)
    error: str | None = None  # an unreadable results file: reported, not raised

    def to_json(self) -> dict[str, Any]:
        return {
            "best_params": self.best_params,
            "best_value": self.best_value,
            "direction": self.direction,
            "sweep_dir": str(self.sweep_dir),
            "objective": self.objective,
            "error": self.error,
        }


def find_studies(paths: list[str | Path], runs: list[RunInfo]) -> list[Study]:
    """Studies whose results file lies in one of ``paths`` or in a run's parent folder."""
    dirs: dict[Path, Path] = {}  # resolved → as given (the report shows paths as given)
    for d in [*map(Path, paths), *(r.path.parent for r in runs)]:
        dirs.setdefault(d.resolve(), d)
    studies = []
    for key, d in sorted((k, d) for k, d in dirs.items() if (k / RESULTS).is_file()):
        mine = [r for r in runs if r.path.resolve().is_relative_to(key)]
        try:
            results = yaml.safe_load((d / RESULTS).read_text()) or {}
            error = None if isinstance(results, dict) else "not a mapping"
        except yaml.YAMLError as e:
            results, error = {}, f"not valid YAML ({e})"
        results = results if isinstance(results, dict) else {}
        # Multi-objective studies write `solutions` (a Pareto front) instead of one best trial.
        params = results.get("best_params") or {}
        studies.append(
            Study(
                d,
                dict(params),
                results.get("best_value"),
                _direction(mine),
                _objective_key(mine),
                mine,
                error and f"{d / RESULTS}: {error}",
            )  # fmt: skip
        )
    return studies


def _direction(runs: list[RunInfo]) -> str | list[str] | None:
    for r in runs:
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
            hydra = yaml.safe_load((r.path / ".hydra" / "hydra.yaml").read_text())
            return hydra["hydra"]["sweeper"]["direction"]
    return None


def _objective_key(runs: list[RunInfo]) -> str | None:
    """``objective`` from the config, else the first ``*/accuracy`` (as mmfw-train returns)."""
    for r in runs:
        if r.config.get("objective"):
            return str(r.config["objective"])
    for r in runs:
        key = next((k for k in r.metrics if k.endswith("/accuracy")), None)
        if key:
            return key
    return None


def optuna_sections(studies: list[Study], root: Path) -> list[Section]:
    """Per study: a one-row "best trial" table, then its trials ranked best first."""
    out: list[Section] = []
    for s in studies:
        where = _rel(s.sweep_dir, root)
        if s.error:
            out.append((f"Optuna: {s.error}", ["sweep"], [[where]]))
            continue
        params = list(s.best_params)
        direction = s.direction if isinstance(s.direction, str) else _fmt(s.direction)
        best = [[where, str(direction), str(s.objective), _fmt(s.best_value),
                 *(_fmt(v) for v in s.best_params.values())]]  # fmt: skip
        out.append(
            ("Optuna: best trial", ["sweep", "direction", "objective", "best value", *params], best)
        )
        maximize = s.direction != "minimize"
        ranked = sorted(s.runs, key=lambda r: _rank(r.metrics.get(s.objective), maximize))
        rows = [
            [
                _rel(r.path, root),
                _fmt(r.metrics.get(s.objective, "—")),
                *(_fmt(value_of(r, k)) for k in params),
                r.status,
            ]  # fmt: skip
            for r in ranked
        ]
        title = f"Optuna: trials ({direction} {s.objective}, best first)"
        out.append((title, ["run", str(s.objective), *params, "status"], rows))
    return out


def optuna_json(studies: list[Study]) -> dict[str, Any] | list[dict[str, Any]] | None:
    """One study as a dict (the usual case), several as a list, none as None."""
    if not studies:
        return None
    return studies[0].to_json() if len(studies) == 1 else [s.to_json() for s in studies]


def _rank(value: Any, maximize: bool) -> tuple[int, float]:
    if not isinstance(value, int | float):
        return (1, 0.0)  # trials without a value (failed, unfinished) last
    return (0, -value if maximize else value)


def _rel(path: Path, root: Path) -> str:
    inside = path.resolve().is_relative_to(root.resolve()) and path.resolve() != root.resolve()
    return str(path.resolve().relative_to(root.resolve())) if inside else str(path)
