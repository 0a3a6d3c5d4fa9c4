"""Where the configs live and how to compose them exactly as the CLI does."""

from __future__ import annotations

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


def conf_dir() -> Path:
    """``conf/`` of the source tree (editable install) or the copy inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "train.yaml").exists():
            return candidate
    raise FileNotFoundError(f"no conf/ with train.yaml next to {here}")


CONF_DIR = str(conf_dir())


def compose(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """The config ``mmfw-train <overrides>`` would run with (unresolved, struct mode)."""
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))
