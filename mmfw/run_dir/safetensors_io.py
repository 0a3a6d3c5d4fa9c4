"""A state dict as safetensors files: one file, or shards plus the index transformers uses."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"


def save_state(
    state: dict[str, torch.Tensor], out: Path, max_shard_size: str | int = "5GB"
) -> list[str]:
    """Write ``state`` under ``out``; returns the file names. A tensor whose storage an
    earlier one already uses (tied embeddings) is written as a copy, since safetensors refuses
    shared memory; the others are written as they are."""
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    own, seen = {}, set()
    for key, value in state.items():
        value = value.detach().cpu().contiguous()
        storage = value.untyped_storage().data_ptr()
        own[key] = value.clone() if storage in seen else value
        seen.add(storage)
    state = own
    split = split_torch_state_dict_into_shards(
        state, filename_pattern="model{suffix}.safetensors", max_shard_size=max_shard_size
    )
    for filename, keys in split.filename_to_tensors.items():
        save_file({k: state[k] for k in keys}, str(out / filename), metadata={"format": "pt"})
    if split.is_sharded:
        index = {
            "metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())},
            "weight_map": split.tensor_to_filename,
        }
        (out / INDEX).write_text(json.dumps(index, indent=2))
    return sorted(split.filename_to_tensors)


def has_state(folder: Path) -> bool:
    return (folder / WEIGHTS).exists() or (folder / INDEX).exists()


def load_state(folder: Path) -> dict[str, torch.Tensor]:
    """The state dict saved by :func:`save_state` (either layout)."""
    from safetensors.torch import load_file

    if (folder / INDEX).exists():
        files = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
    else:
        files = [WEIGHTS]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(str(folder / name)))
    return state


def rename_saved(folder: Path, rename) -> int:
    """Rename the tensors of saved weights (either layout) in place; returns how many changed."""
    from safetensors.torch import load_file, save_file

    index_path = folder / INDEX
    index = json.loads(index_path.read_text()) if index_path.exists() else None
    files = sorted(set(index["weight_map"].values())) if index else [WEIGHTS]
    changed = 0
    for name in files:
        tensors = load_file(str(folder / name))
        renamed = {rename(k): v for k, v in tensors.items()}
        changed += sum(a != b for a, b in zip(tensors, renamed, strict=True))
        save_file(renamed, str(folder / name), metadata={"format": "pt"})
    if index:
        index["weight_map"] = {rename(k): v for k, v in index["weight_map"].items()}
        index_path.write_text(json.dumps(index, indent=2))
    return changed
