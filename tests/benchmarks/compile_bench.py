"""One side of the compile benchmark (run by test_compile_bench.py, one process per side).

``python tests/benchmarks/compile_bench.py OUT {eager,compile} {packed,fixed} STEPS``

The tiny LLaVA-NeXT twin (anyres: 1-5 views per image, newline tokens; Llama 256 x 4) trains
forward + backward on a stream of distinct micro-batches, each 8 samples of text and 0-2
images of varied sizes packed by mmfw's PackingCollator into rows of at most 1024 tokens:
``packed`` as few rows as they need (shapes change every step), ``fixed`` with
``data.fixed_rows=3`` and ``data.fixed_views=16`` (every step the same shapes).
``compile`` compiles every block first (``trainer.compile``). Appends one JSON line: the
first step's seconds (compilation included), the median of the others, real tokens per
second, the graphs torch compiled and the loss of the last step."""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
from hydra.utils import instantiate

import mmfw
from mmfw.build import build_model
from mmfw.data.packing import PackingCollator
from mmfw.data.processor import Sample
from mmfw.resolution.layout import count_image_tokens
from mmfw.training.compile import compile_blocks

IMAGE_ID, VOCAB, MAX_LENGTH, ROWS, VIEWS = 5, 160, 1024, 3, 16
SIZES = [(40, 70), (90, 30), (64, 64), (30, 100), (120, 50)]


def samples(model, strategy, n: int, seed: int) -> list[Sample]:
    """``n`` samples: text of 40-300 tokens around 0-2 images, half of it the target."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids, images, layouts = [], [], []
        for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
            w, h = SIZES[int(torch.randint(0, len(SIZES), (1,), generator=g))]
            views, layout = strategy(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
            ids += torch.randint(10, VOCAB, (20,), generator=g).tolist()
            ids += [IMAGE_ID] * count_image_tokens(layout, model.feature_grid)
            images.append(views)
            layouts.append(layout)
        text = int(torch.randint(40, 300, (1,), generator=g))
        ids += torch.randint(10, VOCAB, (text,), generator=g).tolist()
        labels = [-100] * (len(ids) - text // 2) + ids[len(ids) - text // 2 :]
        out.append(Sample(ids, labels, images, layouts, f"s{seed}-{i}"))
    return out


def main(out: str, mode: str, shapes: str, steps: int) -> None:
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava_next_7b",
            "llm.config.hidden_size=256",
            "llm.config.intermediate_size=704",
            "llm.config.num_hidden_layers=4",
        ]
    )
    strategy = instantiate(cfg.resolution)
    torch.manual_seed(0)
    model = build_model(cfg, strategy, VOCAB, IMAGE_ID).train()
    fixed = shapes == "fixed"
    model.view_budget = VIEWS if fixed else None
    collate = PackingCollator(0, MAX_LENGTH, fixed_rows=ROWS if fixed else None)
    batches = [collate(samples(model, strategy, 8, seed)) for seed in range(steps)]
    keys = ("input_ids", "attention_mask", "labels", "images", "layouts", "position_ids")
    if mode == "compile":
        compile_blocks(model)
    from torch._dynamo.utils import counters

    times, tokens, loss = [], 0, 0.0
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        out_ = model(**{k: batch[k] for k in (*keys, "sample_ids")})
        out_.loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        loss = float(out_.loss)
        if i:
            tokens += int(batch["attention_mask"].sum())
    row = {
        "mode": mode,
        "shapes": shapes,
        "first_step_s": times[0],
        "median_step_s": statistics.median(times[1:]),
        "tokens_per_s": tokens / sum(times[1:]),
        "row_shapes": sorted({tuple(b["input_ids"].shape) for b in batches}),
        "graphs": int(counters["stats"].get("unique_graphs", 0)),
        "loss": loss,
    }
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
