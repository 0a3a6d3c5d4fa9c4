"""Small helpers shared by the Hugging Face-backed modules."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str, key: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"{key}={name!r} is not one of {sorted(DTYPES)}")
    return DTYPES[name]


def on_meta_device() -> bool:
    """True inside ``with torch.device("meta")``: build shapes only, read no weights."""
    return torch.get_default_device().type == "meta"


def plain(config: Any) -> dict:
    """A yaml mapping as plain Python containers (transformers' configs reject DictConfig)."""
    if isinstance(config, DictConfig | ListConfig):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config or {})


def resolve_attn_implementation(name: str, key: str) -> str:
    """``flash_attention_2`` when it can run here (CUDA and the flash-attn package), else
    ``sdpa`` with a warning that says why; other names unchanged."""
    if name != "flash_attention_2":
        return name
    if on_meta_device():  # planning: no kernel runs, and the shapes are the same
        return "sdpa"
    import importlib.util
    import warnings

    reason = None
    if not torch.cuda.is_available():
        reason = "there is no CUDA device"
    elif importlib.util.find_spec("flash_attn") is None:
        reason = "flash-attn is not installed (pip install -e '.[gpu]')"
    if reason:
        warnings.warn(f"{key}=flash_attention_2 but {reason}: using sdpa instead", stacklevel=2)
        return "sdpa"
    return name
