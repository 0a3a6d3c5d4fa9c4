"""``mmfw-train [overrides]``: one run, or a sweep with ``-m``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mmfw.config import CONF_DIR  # noqa: E402
from mmfw.errors import run_reporting  # noqa: E402

COMMAND = "mmfw-train"


def main() -> None:
    """Validate first (nothing is written before the config is known to be sound), then run."""
    from mmfw.cli.preflight import guard_run_dir, split_argv, validate_jobs
    from mmfw.training.distributed import LAUNCHED_BY_MMFW, global_rank

    overrides, multirun, info = split_argv(sys.argv[1:])
    exclusive = {"--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}
    if multirun and any(a.split("=", 1)[0] in exclusive for a in sys.argv[1:]):
        from mmfw.errors import fail

        fail(
            COMMAND,
            "-m/--multirun cannot be combined with --cfg or --info (Hydra runs one of them): "
            "to see one job of a sweep, drop -m and give that job's values "
            "(mmfw-train --cfg job connector=linear ...)",
        )
    # Local ranks started by rank 0 run the job rank 0 already checked (in its directory).
    child = os.environ.get(LAUNCHED_BY_MMFW) == "1" and os.environ.get("LOCAL_RANK") != "0"
    if not info and not child and global_rank() == 0:

        def preflight() -> None:
            validate_jobs(overrides, multirun)
            extra = guard_run_dir(overrides, multirun)
            if extra:
                sys.argv.append(extra)

        run_reporting(COMMAND, preflight)
    hydra_main()


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    return run_reporting(COMMAND, lambda: _job(cfg))


def _job(cfg: DictConfig) -> float | None:
    from mmfw.training.distributed import local_ranks
    from mmfw.training.run import TrainingRun

    hc = HydraConfig.get()
    if cfg.get("pipeline") is not None:
        from mmfw.training.pipeline import run_pipeline

        run_pipeline(cfg, hc.runtime.output_dir, list(hc.overrides.task))
        return None
    sweep = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    group = os.path.basename(os.path.normpath(sweep)) if sweep else None
    run_dir, overrides = Path(hc.runtime.output_dir), list(hc.overrides.task)
    run = TrainingRun(cfg, run_dir, group, overrides)
    run.check_dir()  # a sweep job or another launcher's: before any rank starts
    spec = run.spec
    with local_ranks(spec.processes_per_node, spec.num_nodes, run_dir, overrides):
        metrics = run.as_rank()
    return objective(metrics, cfg.get("objective"))


def objective(metrics: dict, key: str | None) -> float | None:
    """The number a sweeper optimises: ``metrics[objective]``, else the first accuracy."""
    if key:
        if key not in metrics:
            raise KeyError(
                f"objective={key!r} is not in this run's metrics.json (keys: {sorted(metrics)})"
            )
        return float(metrics[key])
    accuracies = [v for k, v in metrics.items() if k.endswith("/accuracy")]
    return accuracies[0] if accuracies else None


if __name__ == "__main__":
    main()
