"""``mmfw-eval run=<run dir> benchmark=<name> [benchmark.path=<file>]``."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

from mmfw.config import CONF_DIR  # noqa: E402


@hydra.main(config_path=CONF_DIR, config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mmfw.eval.runner import evaluate_benchmark
    from mmfw.runs import load_run

    run = load_run(cfg.run, ckpt=cfg.ckpt, device=cfg.device)
    overridden = any(
        o.split("=")[0].lstrip("+~").startswith("synthetic")
        for o in HydraConfig.get().overrides.task
    )
    if "synthetic" in run.config and not overridden:
        # A synthetic benchmark defaults to the task the run was trained on.
        with open_dict(cfg):
            cfg.synthetic = run.config.synthetic
    name = HydraConfig.get().runtime.choices["benchmark"]
    metrics = evaluate_benchmark(
        name, instantiate(cfg.benchmark), run.model, run.processor, cfg.run
    )
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_category"}, indent=2))


if __name__ == "__main__":
    main()
