"""``mmfw-train +pipeline=<name>``: a recipe's stages in order, each in its own run directory,
each starting from the previous one's weights (``stage.init_from``).

Re-running the same command skips finished stages and resumes the interrupted one
(``resume=auto`` in its directory).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mmfw.run_dir.record import RunRecord
from mmfw.training.distributed import is_rank_zero


def stage_overrides(cfg: DictConfig) -> dict[str, list[str]]:
    """``pipeline.stages``: stage name → its overrides, in order."""
    stages = OmegaConf.to_container(cfg.pipeline.stages, resolve=True)
    if not isinstance(stages, dict) or not stages:
        raise ValueError("pipeline.stages must map stage names to lists of overrides")
    for name, overrides in stages.items():
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise ValueError(f"pipeline.stages.{name} must be a list of override strings")
    return stages


def run_pipeline(cfg: DictConfig, run_dir: str | Path, overrides: list[str]) -> list[Path]:
    """Run every stage as its own ``mmfw-train`` process; returns the stage directories."""
    run_dir = Path(run_dir)
    base = [o for o in overrides if not o.lstrip("+~").startswith("pipeline")]
    previous: Path | None = None
    done = []
    for name, extra in stage_overrides(cfg).items():
        stage_dir = run_dir / name
        status = RunRecord(stage_dir).status
        if status == "finished":
            print(f"mmfw pipeline: stage {name} already finished in {stage_dir}; skipping")
        else:
            verb = "resuming" if status else "starting"
            print(f"mmfw pipeline: {verb} stage {name} in {stage_dir}", flush=True)
            args = [*extra, *base, f"hydra.run.dir={stage_dir}", "resume=auto"]
            if previous is not None:
                args.append(f"stage.init_from={previous}")
            code = subprocess.run([sys.executable, "-m", "mmfw.cli.train", *args]).returncode
            if code != 0:
                raise SystemExit(
                    f"mmfw pipeline: stage {name} failed (exit {code}); see {stage_dir}/run.json. "
                    "Run the same command again to resume it."
                )
        previous = stage_dir
        done.append(stage_dir)
    if is_rank_zero():
        summary = {
            "stages": {d.name: str(d) for d in done},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (run_dir / "pipeline.json").write_text(json.dumps(summary, indent=2))
    return done
