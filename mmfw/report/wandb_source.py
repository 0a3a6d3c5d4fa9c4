"""Runs for the report from wandb: the public API (online) or offline run folders.

Online, ``wandb.Api().runs(path, filters)`` gives each run's config, summary, state, name,
group and tags, plus a sampled ``train/loss`` history (:func:`online_runs`); offline runs come
from :mod:`mmfw.report.wandb_log` (filtered by :mod:`mmfw.report.wandb_filters`). Either way,
:func:`load_wandb` maps each :class:`WandbRun` to the report's RunInfo with a folder of its own.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from mmfw.eval.scores import is_score
from mmfw.report.collect import RunInfo, flatten
from mmfw.report.wandb_log import offline_runs
from mmfw.report.wandb_run import LOSS, STEP_KEYS, WandbRun, is_number, loss_points

# wandb state → mmfw status (run.json's words). Crashed / killed / preempted runs stopped
# without an exit code of their own: mmfw calls that interrupted.
STATUS = {"finished": "finished", "failed": "failed", "running": "running", "pending": "running",
          "crashed": "interrupted", "killed": "interrupted", "preempted": "interrupted",
          "preempting": "interrupted"}  # fmt: skip


# --- online ---------------------------------------------------------------------------------


def from_public_run(run: Any, history: bool = True) -> WandbRun:
    """Map a ``wandb.apis.public.Run`` (only its attributes are read) to a :class:`WandbRun`."""
    summary = getattr(run, "summary_metrics", None)
    if summary is None:
        summary = getattr(run, "summary", None) or {}
    summary = dict(getattr(summary, "_json_dict", None) or summary)
    # The API wraps config values as {"value": v, "desc": ...} in some versions.
    config = {
        k: v["value"] if isinstance(v, dict) and set(v) <= {"value", "desc"} and "value" in v else v
        for k, v in dict(run.config or {}).items()
    }
    points: list[tuple[int, float]] = []
    if history and hasattr(run, "history"):
        try:
            rows = run.history(keys=[LOSS, STEP_KEYS[0]], samples=1000, pandas=False)
        except Exception as e:  # noqa: BLE001 - a missing curve must not lose the report
            print(f"mmfw-report: warning: no history for run {run.id}: {e}", file=sys.stderr)
            rows = []
        points = loss_points(rows)
    entity, project = getattr(run, "entity", "") or "", getattr(run, "project", "") or ""
    state = str(run.state).lower()
    return WandbRun(
        id=str(run.id),
        name=str(run.name or run.id),
        project=project,
        entity=entity,
        group=run.group or "",
        tags=list(run.tags or []),
        state=state,
        config=config,
        summary=summary,
        history=points,
        source="/".join(p for p in (entity, project, str(run.id)) if p),
        error=None if state in ("finished", "running", "pending") else f"wandb state: {state}",
    )


def online_runs(path: str, filters: dict | None) -> list[WandbRun]:
    import wandb

    api = wandb.Api(timeout=30)
    return [from_public_run(r) for r in api.runs(path, filters=filters or {})]


# --- WandbRun → RunInfo ---------------------------------------------------------------------


def metrics_of(summary: dict) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """metrics.json's names from a wandb summary, and per-category accuracies.

    ``trainer/global_step`` → ``step``; an end-of-training accuracy is logged as
    ``<benchmark>/accuracy`` already; where a run has none, the last in-training value
    (``eval/<benchmark>/<metric>``) stands in. ``_``-keys and media (tables) are left out."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            if "_type" not in value:  # a wandb media object (table, image) has no number
                for k, v in value.items():
                    walk(f"{prefix}/{k}", v)
        else:
            flat[prefix] = value

    for key, value in summary.items():
        if not key.startswith("_"):
            walk(key, value)
    metrics = dict(flat)
    if "step" not in metrics and is_number(flat.get(STEP_KEYS[0])):
        metrics["step"] = int(flat[STEP_KEYS[0]])
    per_category: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        bench, _, name = key.removeprefix("eval/").partition("/")
        if not key.startswith("eval/") or not is_number(value):
            continue
        if is_score(name):
            metrics.setdefault(f"{bench}/{name}", value)
        elif name.startswith("per_category/"):
            per_category.setdefault(bench, {})[name.split("/", 1)[1]] = float(value)
    return metrics, {b: c for b, c in per_category.items() if len(c) > 1}


def choices_of(overrides: list[str], config: dict[str, Any]) -> dict[str, str]:
    """Group choices named on the command line (``connector=x``): wandb has no hydra.yaml, so
    groups left at their default are not known (their keys are compared one by one)."""
    out = {}
    for o in overrides:
        key, eq, value = o.lstrip("+").partition("=")
        if not eq or key.startswith(("~", "hydra")) or "." in key.split("@")[0]:
            continue
        if key not in config:  # a leaf key (seed=1) is a value, not a group
            out[key] = value
    return out


def _labels(runs: list[WandbRun]) -> list[str]:
    """Folder names: the run's name (``/`` keeps nesting), with its id where names repeat."""
    labels = []
    for run in runs:
        parts = [re.sub(r"[^A-Za-z0-9_.=-]", "_", p) for p in (run.name or run.id).split("/")]
        labels.append("/".join(p for p in parts if p.strip(".")) or run.id)
    return [
        f"{label}-{run.id}" if labels.count(label) > 1 else label
        for label, run in zip(labels, runs, strict=True)
    ]


def to_run_info(run: WandbRun, folder: Path) -> RunInfo:
    """The report's RunInfo; ``folder`` gets ``source.json`` (which wandb run) and, when a loss
    history was logged, ``csv/metrics.csv`` (the report's loss-curve figure reads it there)."""
    config = {k: v for k, v in run.config.items() if k != "_wandb"}
    overrides = config.pop("overrides", [])  # mmfw logs the job's overrides with the config
    if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        config["overrides"], overrides = overrides, []
    flat = flatten(config)
    metrics, per_category = metrics_of(run.summary)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"id": run.id, "name": run.name, "project": run.project, "entity": run.entity,
            "group": run.group, "tags": run.tags, "state": run.state, "source": run.source}  # fmt: skip
    (folder / "source.json").write_text(json.dumps(meta, indent=2))
    csv = folder / "csv" / "metrics.csv"
    if run.history:
        csv.parent.mkdir(exist_ok=True)
        csv.write_text("step,train/loss\n" + "".join(f"{s},{v}\n" for s, v in run.history))
    elif csv.exists():
        csv.unlink()
    status = run.status or STATUS.get(run.state.lower(), "unknown")
    return RunInfo(folder, flat, choices_of(overrides, flat), overrides, metrics, status,
                   run.error, per_category)  # fmt: skip


def _has_key() -> bool:
    """Online as ``logger.wandb.mode=auto`` decides (mmfw.training.loggers.wandb_mode, which is
    not imported: it pulls in Lightning): WANDB_MODE, else an API key in the env or ~/.netrc."""
    mode = os.environ.get("WANDB_MODE")
    if mode in ("online", "offline", "disabled"):
        return mode == "online"
    netrc = Path.home() / ".netrc"
    return bool(os.environ.get("WANDB_API_KEY")) or (
        netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    )


def load_wandb(
    path: str, out: Path, filters: dict | None = None, wandb_dir: str | Path | None = None
) -> tuple[list[RunInfo], str]:
    """The runs of ``[entity/]project`` (online when a key is configured, unless ``wandb_dir``
    is given or the API cannot be reached) as RunInfo, with folders under ``out/wandb-runs``; and where they came from."""
    offline = wandb_dir is not None or not _has_key()
    runs: list[WandbRun] = []
    reason = ""
    if not offline:
        try:
            runs, source = online_runs(path, filters), f"wandb {path}"
        except Exception as e:  # noqa: BLE001 - no key, no network: the local folders still count
            reason = f" (wandb API unreachable: {type(e).__name__}: {e})"
            print(f"mmfw-report: warning: reading offline runs{reason}", file=sys.stderr)
            offline = True
    if offline:
        root = Path(wandb_dir or os.environ.get("WANDB_DIR") or ".")
        if not root.is_dir():
            raise FileNotFoundError(f"--wandb-dir {root} is not a directory")
        runs, source = offline_runs(root, path, filters), f"wandb {path} (offline, {root})"
    if not runs:
        raise FileNotFoundError(
            f"no wandb runs of {path} match {filters or {}} in {source}{reason}"
        )
    infos = [
        to_run_info(run, out / "wandb-runs" / label)
        for run, label in zip(runs, _labels(runs), strict=True)
    ]
    # In name order, numbers by value (job 10 after job 9), as run dirs are listed.
    infos.sort(
        key=lambda r: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(r.path))]
    )
    return infos, source
