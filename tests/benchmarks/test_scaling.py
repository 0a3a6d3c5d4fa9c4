"""Training throughput: 1 process vs 2-process DDP on this CPU (same global batch, same
steps), and the FLOPs per token of the LLM part against the 6·N rule.

Run with ``make bench``; prints numbers and ratios measured in the same run.
"""

from __future__ import annotations

import json
import os

import pytest
from hydra.utils import instantiate
from PIL import Image

from mmfw.data.collate import PadCollator
from mmfw.data.templates.base import Turn
from mmfw.training.flops import StepFlops
from tests.conftest import SMALL_TASK, run_cli
from tests.helpers import tiny_components

pytestmark = pytest.mark.bench
STEPS = 150
GLOBAL = 16


def _run(tmp_path, name, *overrides) -> dict:
    run_dir = tmp_path / name
    run_cli(
        "mmfw-train",
        "experiment=tiny_llava",
        *SMALL_TASK,
        "synthetic.num_train=512",
        f"data.global_batch_size={GLOBAL}",
        f"trainer.max_steps={STEPS}",
        "checkpoint.every_n_train_steps=1000",
        "logger=csv",
        "evaluate.at_end=false",
        "trainer.enable_progress_bar=false",
        *overrides,
        f"hydra.run.dir={run_dir}",
    )
    return json.loads((run_dir / "metrics.json").read_text())


def test_ddp_scaling_on_this_cpu(tmp_path):
    one = _run(tmp_path, "one", f"data.batch_size={GLOBAL}")
    two = _run(
        tmp_path,
        "ddp",
        f"data.batch_size={GLOBAL // 2}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
    )
    rows = []
    for name, m in (("1 process", one), ("2-process DDP", two)):
        # The loop's wall time from the first step's start to the last step's end.
        wall = (STEPS * GLOBAL - GLOBAL) / m["time/train_loop_s"]
        rows.append((name, m["train/tokens_per_s"], wall))
        print(
            f"\n[ddp scaling] {name}: {m['train/tokens_per_s']:.0f} tokens/s inside steps, "
            f"{wall:.1f} samples/s wall over the loop ({STEPS} steps x {GLOBAL} samples in "
            f"{m['time/train_loop_s']:.1f} s; {m['time/fit_s']:.1f} s with start-up)"
        )
    tokens_ratio = rows[1][1] / rows[0][1]
    wall_ratio = rows[1][2] / rows[0][2]
    print(
        f"[ddp scaling] {os.cpu_count()} CPU cores: 2 processes give {tokens_ratio:.2f}x the step "
        f"throughput and {wall_ratio:.2f}x the wall throughput of 1 process "
        f"(scaling efficiency {wall_ratio / 2:.0%}; the processes share the same cores)"
    )
    assert one["step"] == two["step"] == STEPS


def test_llm_flops_per_token_against_6n(tmp_path):
    for recipe in ("tiny_llava", "tiny_mm15_3b"):
        cfg, parts = tiny_components(tmp_path / recipe, f"experiment={recipe}", "stage=full")
        instantiate(cfg.stage).freeze(parts.model)
        turns = [Turn("human", "<image>\nWhat colour is the small square?")]
        sample = parts.processor.prompt_sample(turns, [Image.new("RGB", (64, 64))])
        batch = PadCollator(parts.processor.tokenizer.pad_token_id)([sample])
        flops = StepFlops(parts.model)
        tokens = int(batch["attention_mask"].sum())
        llm = flops(batch)["llm"] / tokens
        n = sum(
            p.numel()
            for name, p in parts.model.llm.named_parameters()
            if "embed_tokens" not in name
        )
        attention = 3 * 4 * flops.llm_layers * flops.llm_width * tokens
        print(
            f"\n[flops] {recipe}: LLM {llm:,.0f} FLOPs/token = 6N {6 * n:,} x {llm / (6 * n):.3f} "
            f"(N = {n:,} non-embedding LLM parameters; attention adds {attention:,.0f} at {tokens} tokens; "
            f"without it {(llm - attention) / (6 * n):.4f} x 6N)"
        )
        assert (llm - attention) == pytest.approx(6 * n, rel=0.01)
