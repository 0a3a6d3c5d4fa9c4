"""``stage.init_from``: start a stage from another run's model weights, loaded strictly."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from mmfw.run_dir.checkpoints import model_state, read_checkpoint


def resolve_source(init_from: str) -> Path:
    """A run directory → its ``checkpoints/last.ckpt``; a checkpoint path → itself."""
    path = Path(init_from).expanduser()
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.exists():
        raise FileNotFoundError(
            f"stage.init_from={init_from!r}: no such run directory (with checkpoints/last.ckpt) "
            "or checkpoint; point it at the previous stage's run directory or a .ckpt"
        )
    return path


def merge_lora(state: dict[str, torch.Tensor], adapters: dict) -> dict[str, torch.Tensor]:
    """Fold peft LoRA deltas into their base weights: W ← W + (alpha/r)·B·A."""
    state = dict(state)
    partial = [
        k
        for k in state
        if k.endswith(".base.weight") and k[: -len("base.weight")] + "lora_A.weight" in state
    ]
    if partial:
        raise ValueError(
            "stage.init_adapters=merge: the source has Partial LoRA adapters "
            f"({partial[0].rsplit('.', 2)[0]}, ...) whose delta applies only at image tokens and "
            "cannot be folded into the base weights; keep them (stage.init_adapters=carry with the "
            "same stage.adapters)"
        )
    from mmfw.config import target_class
    from mmfw.models.adapters.lora import LoRA

    classes = [(a, target_class(a)) for a in adapters.values()]
    loras = [a for a, cls in classes if cls is not None and issubclass(cls, LoRA)]
    a_keys = [k for k in state if k.endswith(".lora_A.default.weight")]
    if a_keys and len(loras) != 1:
        raise ValueError(
            f"stage.init_adapters=merge: expected one LoRA adapter in the source config, found {len(loras)}"
        )
    for a_key in a_keys:
        stem = a_key[: -len(".lora_A.default.weight")]
        scale = float(loras[0]["alpha"]) / float(loras[0]["r"])
        lora_a = state.pop(a_key).float()
        lora_b = state.pop(f"{stem}.lora_B.default.weight").float()
        base = state.pop(f"{stem}.base_layer.weight")
        state[f"{stem}.weight"] = (base.float() + scale * lora_b @ lora_a).to(base.dtype)
        if f"{stem}.base_layer.bias" in state:
            state[f"{stem}.bias"] = state.pop(f"{stem}.base_layer.bias")
    return state


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """A short hash of tensors' bytes, to say in the log exactly which weights were loaded."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def load_init_weights(model: nn.Module, init_from: str, adapters_mode: str) -> dict:
    """Load the source's model weights into ``model`` strictly; returns what was loaded."""
    path = resolve_source(init_from)
    checkpoint = read_checkpoint(path)
    state = model_state(checkpoint)
    source_adapters = ((checkpoint.get("mmfw_config") or {}).get("stage") or {}).get(
        "adapters"
    ) or {}
    if adapters_mode == "merge":
        state = merge_lora(state, source_adapters)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        hint = (
            f"the source trained with adapters {sorted(source_adapters)}: give this stage the same "
            "stage.adapters (init_adapters=carry) or set stage.init_adapters=merge"
            if source_adapters
            else "the two stages must build the same architecture (encoder, connector, fusion, llm, adapters)"
        )
        raise ValueError(
            f"stage.init_from={init_from}: {path} does not match this model; "
            f"missing keys {few(missing)}, unexpected keys {few(unexpected)}; {hint}"
        )
    with gathered(model):
        model.load_state_dict(state, strict=True)
    return {"path": str(path), "tensors": len(state), "sha256": fingerprint(state)}


def few(keys: list[str], n: int = 5) -> str:
    return (
        "[]"
        if not keys
        else f"[{', '.join(keys[:n])}{', ...' if len(keys) > n else ''}] ({len(keys)})"
    )


def gathered(model: nn.Module):
    """Under ZeRO-3 the parameters are partitioned: gather them to load, then re-partition."""
    params = [p for p in model.parameters() if hasattr(p, "ds_id")]
    if not params:
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=0)
