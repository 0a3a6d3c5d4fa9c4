"""Where the configs live and how to compose them exactly as the CLI does."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf


def conf_dir() -> Path:
    """``conf/`` of the source tree (editable install) or the copy inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "train.yaml").exists():
            return candidate
    raise FileNotFoundError(f"no conf/ with train.yaml next to {here}")


CONF_DIR = str(conf_dir())


def attempt_subdir(run_dir: str) -> str:
    """Where Hydra keeps an attempt's config, overrides and hydra.yaml (``hydra.output_subdir``):
    ``.hydra`` for a run's first attempt, ``.hydra/attempts/<n>`` for its n-th, so a resume
    never overwrites what the run was started with."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return ".hydra"
    try:
        attempts = json.loads(path.read_text()).get("attempts", 1)
    except (OSError, ValueError):
        attempts = 1
    count = len(attempts) if isinstance(attempts, list) else 1
    return f".hydra/attempts/{count + 1}"


def eval_logs(run: str, out: str | None) -> str:
    """Where ``mmfw-eval`` keeps its logs: under ``out`` when given, else ``<run>/eval``."""
    return str(Path(out) / ".logs") if out else str(Path(run) / "eval" / ".logs")


if not OmegaConf.has_resolver("mmfw_eval_logs"):
    OmegaConf.register_new_resolver("mmfw_eval_logs", eval_logs)
if not OmegaConf.has_resolver("mmfw_attempt_subdir"):
    OmegaConf.register_new_resolver("mmfw_attempt_subdir", attempt_subdir)


def compose(
    overrides: list[str] | None = None,
    config_name: str = "train",
    return_hydra_config: bool = False,
) -> DictConfig:
    """The config ``mmfw-train <overrides>`` would run with (unresolved, struct mode);
    ``return_hydra_config`` keeps the ``hydra`` node (its ``runtime.choices``)."""
    kw = {"overrides": list(overrides or []), "return_hydra_config": return_hydra_config}
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name=config_name, **kw)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name=config_name, **kw)
