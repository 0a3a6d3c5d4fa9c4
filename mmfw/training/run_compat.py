"""Whether a config may continue the run a directory holds: the keys that define the model
(its parts, their shapes, the tokenizer, the resolution, the stage's trainable parts) must be
the ones the run was started with; trainer, data and optimizer settings may change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mmfw.errors import UserError

# Config sections whose values the checkpoint's weights depend on.
MODEL_SECTIONS = (
    "encoder",
    "connector",
    "fusion",
    "llm",
    "resolution",
    "tokenizer",
    "model",
    "stage",
)
# Group choices named in the error, the experiment first.
CHOICE_GROUPS = ("experiment", *MODEL_SECTIONS[:6], "stage")
# Where things are cached, not what they are.
IGNORED_LEAVES = ("cache_dir",)
# Stage keys that change how the weights train, not which weights there are.
TRAINING_ONLY = ("stage.lr", "stage.lr_scale", "stage.layer_decay", "stage.weight_decay_exclude",
                 "stage.gradient_checkpointing")  # fmt: skip
SHOWN = 8  # differing keys listed in full; the rest are counted


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` for a nested dict (lists are leaves)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def model_keys(config: dict) -> dict[str, Any]:
    """The model-defining keys of a resolved config, flattened."""
    return {
        k: v
        for section in MODEL_SECTIONS
        for k, v in flatten(config.get(section, {}), f"{section}.").items()
        if k.rsplit(".", 1)[-1] not in IGNORED_LEAVES
        and not any(k == t or k.startswith(t + ".") for t in TRAINING_ONLY)
    }


def differences(held: dict, asked: dict) -> list[tuple[str, Any, Any]]:
    """``(key, held value, asked value)`` for each model-defining key that differs. A key one
    side lacks counts only when the other side sets it (a key added to mmfw since the run
    started, left at null, is no difference)."""
    a, b = model_keys(held), model_keys(asked)
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if _same(x, y):
            continue
        out.append((key, a.get(key, "(absent)"), b.get(key, "(absent)")))
    return out


def _same(x: Any, y: Any) -> bool:
    return json.dumps(x, sort_keys=True, default=str) == json.dumps(y, sort_keys=True, default=str)


def held_choices(run_dir: Path) -> dict[str, str]:
    """The group choices the run was started with (``.hydra/hydra.yaml``)."""
    path = run_dir / ".hydra" / "hydra.yaml"
    try:
        choices = OmegaConf.load(path).hydra.runtime.choices
        return {str(k): str(v) for k, v in choices.items()}
    except Exception:  # noqa: BLE001 - a run without Hydra's record: no choices to name
        return {}


def held_config(run_dir: Path) -> dict | None:
    """The resolved config the run dir holds, or None when it holds none."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.exists():
        return None
    held = OmegaConf.load(path)
    try:  # mmfw saves it resolved; Hydra's own copy (a first attempt that died early) is not
        return OmegaConf.to_container(held, resolve=True)
    except Exception:  # noqa: BLE001 - compare what can be compared
        return OmegaConf.to_container(held, resolve=False)


def resolved(cfg: DictConfig) -> dict:
    """``cfg`` as the run would save it (init_from_hf's architecture applied)."""
    if cfg.get("model") is not None and cfg.model.get("init_from_hf"):
        from mmfw.training.init_from_hf import with_hf_architecture

        cfg = with_hf_architecture(cfg)
    return OmegaConf.to_container(cfg, resolve=True)


def check_resumable(
    run_dir: Path, asked: dict, asked_choices: dict[str, str] | None = None, where: str = ""
) -> None:
    """Raise a :class:`UserError` naming every differing model key when ``asked`` cannot
    continue the run in ``run_dir``; nothing is written either way."""
    held = held_config(run_dir)
    if held is None:
        return
    diff = differences(held, asked)
    if not diff:
        return
    raise UserError(
        incompatible_message(run_dir, diff, held_choices(run_dir), asked_choices or {}, where)
    )


def incompatible_message(
    run_dir: Path,
    diff: list[tuple[str, Any, Any]],
    held: dict[str, str],
    asked: dict[str, str],
    where: str = "",
) -> str:
    changed = [g for g in CHOICE_GROUPS if g in held and g in asked and held[g] != asked[g]]
    if changed:
        holds = ", ".join(f"{g}={held[g]}" for g in changed)
        wants = ", ".join(f"{g}={asked[g]}" for g in changed)
        head = f"this run holds {holds}; you asked for {wants}"
    else:
        head = "this run was started with another model"
    lines = [
        f"{where or run_dir}: cannot resume: {head}: {len(diff)} model key(s) differ:",
        *(f"  {k}: {_short(x)} (run) -> {_short(y)} (asked)" for k, x, y in diff[:SHOWN]),
    ]
    if len(diff) > SHOWN:
        lines.append(f"  ... and {len(diff) - SHOWN} more")
    lines.append(
        f"Nothing in {run_dir} was changed. Resume with the run's own settings "
        f"(its overrides: {run_dir / '.hydra' / 'overrides.yaml'}), or start a new run "
        "(another hydra.run.dir, or no resume)."
    )
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
