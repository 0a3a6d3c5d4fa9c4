"""``mmfw-train [overrides]``: one run, or a sweep with ``-m``."""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mmfw.config import CONF_DIR  # noqa: E402


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from mmfw.training.run import train

    hc = HydraConfig.get()
    if cfg.get("pipeline") is not None:
        from mmfw.training.pipeline import run_pipeline

        run_pipeline(cfg, hc.runtime.output_dir, list(hc.overrides.task))
        return None
    sweep = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    group = os.path.basename(os.path.normpath(sweep)) if sweep else None
    metrics = train(cfg, hc.runtime.output_dir, group=group, overrides=list(hc.overrides.task))
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
