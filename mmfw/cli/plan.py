"""``mmfw-plan [overrides] plan.image_sizes='[[W,H],...]' plan.format=json|text``."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mmfw.config import CONF_DIR  # noqa: E402
from mmfw.errors import run_reporting  # noqa: E402

COMMAND = "mmfw-plan"


def main() -> None:
    from mmfw.cli.preflight import split_argv, validate_command
    from mmfw.validate import validate_plan

    overrides, _, info = split_argv(sys.argv[1:])
    if not info:
        run_reporting(COMMAND, lambda: validate_command(overrides, "plan", validate_plan))
    hydra_main()


@hydra.main(config_path=CONF_DIR, config_name="plan", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    from mmfw.plan import plan, render_text

    result = run_reporting(COMMAND, lambda: plan(cfg))
    print(json.dumps(result, indent=2) if cfg.plan.format == "json" else render_text(result))


if __name__ == "__main__":
    main()
