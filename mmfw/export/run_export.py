"""``export_run``: a finished run → a folder transformers (hf_llava, hf_llava_next) or mmfw
(``format=mmfw``) loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mmfw.errors import UserError
from mmfw.export.hf_support import FORMATS, describe
from mmfw.run_dir.safetensors_io import rename_saved, save_state
from mmfw.training.init_from import fingerprint, merge_lora

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def export_run(
    run_dir: str | Path,
    fmt: str,
    out: str | Path,
    *,
    ckpt: str = "last",
    dtype: str = "auto",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
) -> dict:
    """Export ``run_dir``'s checkpoint ``ckpt`` to ``out``; returns what ``export.json`` records.

    ``dtype``: auto (the LLM's dtype) | float32 | bfloat16 | float16, for hf formats.
    ``max_shard_size``: weights above it are split into shards with an index file."""
    from mmfw.runs import load_run

    if fmt not in FORMATS:
        raise UserError(f"format={fmt!r} is not one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(
                f"out={out} exists and is not empty; choose a new folder or set overwrite=true"
            )
        if not (out / "export.json").exists():
            # Never delete what mmfw did not write.
            raise UserError(
                f"out={out} holds files that are not an mmfw export; choose a new folder"
            )
        shutil.rmtree(out)
    run = load_run(run_dir, ckpt=ckpt)
    if fmt == "mmfw":
        info = _export_mmfw(run, Path(run_dir), out, max_shard_size)
    else:
        info = _export_hf(run, Path(run_dir), out, fmt, dtype, max_shard_size)
    info |= {"run": str(Path(run_dir).resolve()), "checkpoint": str(run.checkpoint), "format": fmt}
    (out / "export.json").write_text(json.dumps(info, indent=2))
    return info


def _export_mmfw(run, run_dir: Path, out: Path, max_shard_size: str) -> dict:
    """Resolved config + tokenizer + safetensors weights: ``load_run(out)`` rebuilds the model."""
    (out / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(run.config, out / ".hydra" / "config.yaml")
    shutil.copytree(run_dir / "tokenizer", out / "tokenizer", dirs_exist_ok=True)
    state = run.model.state_dict()
    files = save_state(state, out, max_shard_size)
    return {"files": files, "tensors": len(state), "sha256": fingerprint(state)}


def _export_hf(run, run_dir: Path, out: Path, fmt: str, dtype: str, max_shard_size: str) -> dict:
    from transformers import LlavaForConditionalGeneration, LlavaNextForConditionalGeneration

    from mmfw.export.hf_config import hf_config
    from mmfw.export.hf_processor import build_processor, export_tokenizer
    from mmfw.models.hf_names import bake_position_embeddings, to_hf_state_dict

    cfg, model = run.config, run.model
    arch = describe(cfg, model, fmt)
    name = str(cfg.llm.get("dtype", "float32")) if dtype == "auto" else dtype
    if name not in DTYPES:
        raise UserError(f"dtype={dtype!r}: use auto, {', '.join(DTYPES)}")
    adapters = OmegaConf.to_container(cfg.stage, resolve=True).get("adapters") or {}
    state = model.state_dict()
    if any(".lora_A." in k for k in state):  # peft LoRA folds into the base weights
        state = merge_lora(state, adapters)
    state, unmapped = to_hf_state_dict(state, arch.projector_act)
    if unmapped:
        raise UserError(f"no transformers name for {len(unmapped)} weights: {unmapped[:5]}")
    baked = arch.image_size != model.encoder.image_size
    if baked:
        key = "model.vision_tower.embeddings.position_embedding.weight"
        state[key] = bake_position_embeddings(model.encoder.model, arch.image_size)
    tok = export_tokenizer(
        run_dir / "tokenizer", str(cfg.tokenizer.image_token), run.processor.template
    )
    config = hf_config(arch, model, tok, name)
    cls = (
        LlavaNextForConditionalGeneration
        if fmt == "hf_llava_next"
        else LlavaForConditionalGeneration
    )
    hf = cls._from_config(config, dtype=DTYPES[name])
    result = hf.load_state_dict({k: v.to(DTYPES[name]) for k, v in state.items()}, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise UserError(
            f"{cls.__name__} does not match the mapped weights: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    gen = hf.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out), max_shard_size=max_shard_size)
    # transformers 5 saves the tower as vision_tower.*; the llava-hf releases (and transformers
    # 4, vLLM, SGLang) name it vision_tower.vision_model.*, which transformers 5 reads as well.
    rename_saved(out, release_name)
    processor = build_processor(arch, tok, int(model.encoder.patch_size))
    processor.save_pretrained(str(out))
    return {
        "class": arch.model_class,
        "dtype": name,
        "tensors": len(state),
        "sha256": fingerprint(state),
        "image_token": str(cfg.tokenizer.image_token),
        "baked_position_embeddings": baked,
        "chat_template": tok.chat_template is not None,
    }


def release_name(key: str) -> str:
    """The llava-hf release name of a tensor transformers 5 saved."""
    if key.startswith("vision_tower.") and not key.startswith("vision_tower.vision_model."):
        return "vision_tower.vision_model." + key[len("vision_tower.") :]
    return key
