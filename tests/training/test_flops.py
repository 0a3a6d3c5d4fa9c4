"""Model FLOPs from the architecture equal torch's FLOP counter on a real forward + backward."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from PIL import Image
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from mmfw.data.collate import PadCollator
from mmfw.data.templates.base import Turn
from mmfw.training.flops import StepFlops
from mmfw.training.module import MODEL_INPUTS
from tests.helpers import tiny_components


def _batch(parts, sizes):
    turns = [Turn("human", "<image>\nWhat colour is the small square?")]
    samples = []
    for size in sizes:
        s = parts.processor.prompt_sample(turns, [Image.new("RGB", size, (200, 10, 10))])
        s.labels = list(s.input_ids)
        samples.append(s)
    return PadCollator(parts.processor.tokenizer.pad_token_id)(samples)


@pytest.mark.parametrize(
    "overrides",
    [
        ["stage=full"],
        ["stage=align"],
        ["stage=sft"],
        ["stage=lora", "stage.adapters.lora.r=4"],
        ["experiment=tiny_ixc2_4khd_7b"],
    ],
    ids=["full", "align", "sft", "lora", "ixc_hd9"],
)
def test_step_flops_match_torch_flop_counter(tmp_path, overrides):
    cfg, parts = tiny_components(tmp_path, *overrides)
    instantiate(cfg.stage).freeze(parts.model)
    # Same-length rows: padding is not model FLOPs, so the counter must see none.
    batch = _batch(parts, [(64, 64), (64, 64)])
    assert bool(batch["attention_mask"].all())
    estimate = sum(StepFlops(parts.model)(batch).values())
    # The math kernel runs attention as matmuls the counter sees (the full square, as counted).
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        parts.model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).loss.backward()
    measured = counter.get_total_flops()
    assert estimate == pytest.approx(measured, rel=0.02)


def test_llm_part_follows_the_6n_rule(tmp_path):
    cfg, parts = tiny_components(tmp_path, "stage=full")
    instantiate(cfg.stage).freeze(parts.model)
    batch = _batch(parts, [(64, 64)])
    flops = StepFlops(parts.model)
    tokens = int(batch["attention_mask"].sum())
    attention = 3 * 4 * flops.llm_layers * flops.llm_width * tokens**2
    llm = parts.model.llm
    n = sum(p.numel() for name, p in llm.named_parameters() if "embed_tokens" not in name)
    per_token = (flops(batch)["llm"] - attention) / tokens
    # 6·N: every LLM weight except the embedding lookup (norm gains are the 0.5% left).
    assert per_token == pytest.approx(6 * n, rel=0.01)
