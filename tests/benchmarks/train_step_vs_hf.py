"""The train-step benchmark's measurements:
``python -m tests.benchmarks.train_step_vs_hf speed | memory {mmfw,hf,mmfw_packed}``.

The same tiny LLaVA (CLIP-style ViT 64-d x 2, MLP projector, Llama 256-d x 4), the same
weights, the same 8 samples (one 64x64 image = 64 tokens each, answers of lognormal length),
sdpa attention, float32, forward + backward. ``mmfw``: ``VisionLanguageModel`` on mmfw's
padded batch (``mmfw_packed``: packed); ``hf``: transformers' ``LlavaForConditionalGeneration``
built from the exported config and mapped weights, on the same samples padded to the longest.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.benchmarks.test_data_bench import WORDS as DATA_WORDS

LLM = [
    "llm.config.hidden_size=256",
    "llm.config.intermediate_size=1024",
    "llm.config.num_hidden_layers=4",
    "llm.config.num_attention_heads=4",
    "llm.config.num_key_value_heads=4",
    "data.max_length=1024",
]
WORDS = [*DATA_WORDS, "green", "circle"]


def samples(processor, root: Path, n: int = 8) -> list:
    from mmfw.data.formats.llava_json import Record
    from mmfw.data.templates.base import Turn

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(root / "img.png")
    out = []
    for i in range(n):
        words = int(np.clip(rng.lognormal(3.8, 0.9), 4, 400))
        answer = " ".join(rng.choice(WORDS, size=words))
        turns = [Turn("human", "<image>\nDescribe the image."), Turn("gpt", answer)]
        out.append(processor.training_sample(Record(str(i), ["img.png"], turns), root))
    return out


def hf_model(parts):
    """transformers' LLaVA with mmfw's weights (the export's mapping and config)."""
    from transformers import LlavaForConditionalGeneration

    from mmfw.export.hf_config import hf_config
    from mmfw.export.hf_processor import export_tokenizer
    from mmfw.export.hf_support import describe
    from mmfw.models.hf_names import to_hf_state_dict

    cfg, model, tokenizer_dir = parts
    arch = describe(cfg, model, "hf_llava")
    tok = export_tokenizer(tokenizer_dir, "<image>", instantiate_template(cfg))
    hf = LlavaForConditionalGeneration._from_config(
        hf_config(arch, model, tok, "float32"), attn_implementation="sdpa", dtype=torch.float32
    )
    state, _ = to_hf_state_dict(model.state_dict(), arch.projector_act)
    hf.load_state_dict(state, strict=True)
    return hf


def instantiate_template(cfg):
    from hydra.utils import instantiate

    return instantiate(cfg.template)


def build(packing_too: bool = True):
    """The batch and step functions of each side: ``mmfw``, ``hf`` and ``mmfw_packed``."""
    from mmfw.data.collate import PadCollator
    from mmfw.data.packing import PackingCollator
    from tests.helpers import tiny_components

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp())
    cfg, parts = tiny_components(tmp, *LLM)
    batch_samples = samples(parts.processor, tmp)
    pad = parts.tokenizer.pad_token_id
    model = parts.model.train()
    hf = hf_model((cfg, model, tmp / "tokenizer")).train()
    keys = ("input_ids", "attention_mask", "labels", "images", "layouts", "position_ids")
    padded = PadCollator(pad, "right")(batch_samples)
    packed = PackingCollator(pad, 1024)(batch_samples)
    pixels = torch.cat([model.encoder.normalise(v, torch.float32) for v in padded["images"]])
    hf_inputs = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"],
                 "labels": padded["labels"], "pixel_values": pixels}  # fmt: skip
    sides = {
        "mmfw": (model, {k: padded[k] for k in keys if k in padded}),
        "hf": (hf, hf_inputs),
        "mmfw_packed": (model, {k: packed[k] for k in keys if k in packed}),
    }
    tokens = int(sum(len(s.input_ids) for s in batch_samples))
    return sides, tokens


def step(model, inputs) -> float:
    loss = model(**inputs).loss
    loss.backward()
    return float(loss)


def main(argv: list[str] | None = None) -> None:
    """``speed``: every side in this process, steps alternated so load changes hit all alike;
    ``memory SIDE``: one side only, for its peak resident memory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["speed", "memory"])
    parser.add_argument("side", nargs="?", choices=["mmfw", "hf", "mmfw_packed"])
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args(argv)
    sides, tokens = build()
    if args.mode == "memory":
        model, inputs = sides[args.side]
        sides = {args.side: (model, inputs)}
        # The other side's model is built too; drop it so the RSS is this side's.
        import gc

        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(args.steps):
            step(model, inputs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"side": args.side, "peak_rss_mb": round(peak / 1024, 1),
                          "step_growth_mb": round((peak - before) / 1024, 1)}))  # fmt: skip
        return
    times: dict[str, list[float]] = {name: [] for name in sides}
    losses = {}
    names = list(sides)
    for i in range(args.steps + 2):
        for name in names[i % 3 :] + names[: i % 3]:  # rotated: no side always follows another
            model, inputs = sides[name]
            t0 = time.perf_counter()
            losses[name] = step(model, inputs)
            if i >= 2:  # warm-up rounds are not timed
                times[name].append(time.perf_counter() - t0)
    out = {}
    for name, (_, inputs) in sides.items():
        median = statistics.median(times[name])
        out[name] = {"rows": int(inputs["input_ids"].shape[0]), "row_length": int(inputs["input_ids"].shape[1]),
                     "median_step_s": round(median, 4), "tokens_per_s": round(tokens / median, 1),
                     "loss": losses[name]}  # fmt: skip
    print(json.dumps({"real_tokens": tokens, "sides": out}))


if __name__ == "__main__":
    sys.exit(main())
