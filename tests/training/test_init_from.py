"""stage.init_from: strict loading, LoRA carried or merged, errors that list the keys."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from mmfw.data.collate import PadCollator
from mmfw.data.templates.base import Turn
from mmfw.training.init_from import fingerprint, load_init_weights
from tests.helpers import tiny_components

LORA = [
    "stage=lora",
    "stage.adapters.lora.r=4",
    "stage.adapters.lora.alpha=8.0",
    "stage.adapters.lora.dropout=0.0",
    "stage.adapters.lora.targets=[q_proj,v_proj]",
]


def _save(tmp_path, cfg, model, name="source.ckpt"):
    """A checkpoint as Lightning writes it (LightningModule keys + the run config)."""
    path = tmp_path / name
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "mmfw_config": OmegaConf.to_container(cfg, resolve=True),
            "global_step": 7,
        },
        path,
    )
    return path


def _trained_lora(tmp_path):
    torch.manual_seed(1)
    cfg, parts = tiny_components(tmp_path / "a", *LORA)
    with torch.no_grad():  # a trained adapter: B is no longer zero
        for name, p in parts.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    return cfg, parts


def _logits(parts):
    img = Image.new("RGB", (64, 64), (10, 200, 30))
    sample = parts.processor.prompt_sample([Turn("human", "<image>\nWhich colour?")], [img])
    batch = PadCollator(parts.processor.tokenizer.pad_token_id)([sample])
    parts.model.eval()
    with torch.no_grad():
        return parts.model(
            batch["input_ids"], batch["attention_mask"], None, batch["images"], batch["layouts"]
        ).logits


def test_carry_loads_every_tensor_exactly(tmp_path):
    cfg, source = _trained_lora(tmp_path)
    path = _save(tmp_path, cfg, source.model)
    torch.manual_seed(2)
    _, target = tiny_components(tmp_path / "a", *LORA)
    info = load_init_weights(target.model, str(path), "carry")
    src, dst = source.model.state_dict(), target.model.state_dict()
    assert all(torch.equal(src[k], dst[k]) for k in src)
    assert info["tensors"] == len(src) and info["sha256"] == fingerprint(src)


def test_merge_folds_lora_into_the_base_weights(tmp_path):
    cfg, source = _trained_lora(tmp_path)
    path = _save(tmp_path, cfg, source.model)
    _, plain = tiny_components(tmp_path / "a", "stage=sft")
    load_init_weights(plain.model, str(path), "merge")
    assert not any("lora" in k for k in plain.model.state_dict())
    torch.testing.assert_close(_logits(plain), _logits(source), atol=1e-5, rtol=1e-5)


def test_partial_lora_cannot_be_merged(tmp_path):
    cfg, parts = tiny_components(tmp_path / "a", "stage=partial_lora", "stage.adapters.plora.r=4")
    path = _save(tmp_path, cfg, parts.model)
    _, plain = tiny_components(tmp_path / "a", "stage=sft")
    with pytest.raises(ValueError, match="Partial LoRA.*cannot be folded"):
        load_init_weights(plain.model, str(path), "merge")


def test_a_mismatch_lists_the_keys_and_the_fix(tmp_path):
    cfg, source = _trained_lora(tmp_path)
    path = _save(tmp_path, cfg, source.model)
    _, plain = tiny_components(tmp_path / "a", "stage=sft")
    with pytest.raises(ValueError) as err:
        load_init_weights(plain.model, str(path), "carry")
    msg = str(err.value)
    assert "unexpected keys [llm.model.layers.0.self_attn.q_proj.base_layer.weight" in msg
    assert "missing keys [llm.model.layers.0.self_attn.q_proj.weight" in msg
    assert "stage.init_adapters=merge" in msg


def test_a_missing_source_names_the_key(tmp_path):
    _, plain = tiny_components(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="stage.init_from="):
        load_init_weights(plain.model, str(tmp_path / "nope"), "carry")
