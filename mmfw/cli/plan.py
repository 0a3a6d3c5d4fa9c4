"""``mmfw-plan [overrides] plan.image_sizes='[[W,H],...]' plan.format=json|text``."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mmfw.config import CONF_DIR  # noqa: E402


@hydra.main(config_path=CONF_DIR, config_name="plan", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mmfw.plan import plan, render_text

    if cfg.plan.format not in ("json", "text"):
        raise ValueError(f"plan.format={cfg.plan.format!r}: use json or text")
    result = plan(cfg)
    print(json.dumps(result, indent=2) if cfg.plan.format == "json" else render_text(result))


if __name__ == "__main__":
    main()
