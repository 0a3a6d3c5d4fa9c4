"""Packing on a GPU: the varlen flash-attention path and SDPA give the unpacked loss
(``make test-gpu``; skipped, with the reason, without CUDA or flash-attn)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from hydra.utils import instantiate

from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from tests.helpers import tiny_components

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (run `make test-gpu` on a GPU machine)"
)
KEYS = ("input_ids", "attention_mask", "labels", "images", "layouts")


def _on(batch: dict, device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device)
        elif k == "images":
            out[k] = [t.to(device, torch.bfloat16) for t in v]
        else:
            out[k] = v
    return out


@pytest.mark.parametrize("attn", ["sdpa", "flash_attention_2"])
def test_packed_loss_equals_unpacked_on_gpu(tmp_path, attn):
    if attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        pytest.skip("flash-attn is not installed (pip install -e '.[gpu]')")
    cfg, comp = tiny_components(tmp_path, f"trainer.attn_implementation={attn}")
    ds = ConversationDataset(list(instantiate(cfg.data).sources.values()))
    items = [ds[i] for i in range(8)]
    pad = comp.tokenizer.pad_token_id
    padded = _on(TrainingCollator(comp.processor, pad)(items), "cuda")
    packed = _on(TrainingCollator(comp.processor, pad, packing=True)(items), "cuda")
    model = comp.model.to("cuda", torch.bfloat16).eval()
    with torch.no_grad():
        a = model(**{k: padded[k] for k in KEYS}).loss
        b = model(**{k: packed[k] for k in (*KEYS, "position_ids", "sample_ids")}).loss
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]
    assert torch.allclose(a.float(), b.float(), rtol=2e-2), (float(a), float(b))
