"""One rank of the long-sequence benchmark (run by test_long_sequences.py).

``mode``: none (1 process, the whole packed batch, transformers' block-diagonal mask),
none+segments (1 process, the context-parallel attention path with a group of one), cp (2 processes split it:
trainer.context_parallel=2), dp / dp+balance (2 replicas with batches of equal tokens, one of them text-only,
without and with trainer.encoder_balance). Times forward + backward of the tiny LLaVA-NeXT
twin (for dp, with an 8-layer 384-wide vision tower on 4-px patches) over ``steps`` steps
after one warm-up, and counts what backward keeps (activation bytes,
storages counted once) and the process's peak RSS. Writes one JSON line per rank."""

from __future__ import annotations

import json
import resource
import sys
import time

import torch
import torch.distributed as dist
from hydra.utils import instantiate

import mmfw
from mmfw.build import build_model
from mmfw.models.context_parallel import ContextParallel, use_context_parallel
from mmfw.models.encoder_balance import EncoderBalance
from tests.training.context_parallel_worker import IMAGE_ID, VOCAB, init_ranks, packed_batch

HEAVY_ENCODER = [
    "encoder.config.hidden_size=384",
    "encoder.config.intermediate_size=1536",
    "encoder.config.num_hidden_layers=8",
    "encoder.config.num_attention_heads=6",
    "encoder.config.patch_size=4",
]


def main(out: str, mode: str, length: int, steps: int) -> None:
    world, rank = init_ranks()
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava_next_7b",
            "llm.config.max_position_embeddings=65536",
            "llm.config.hidden_size=256",
            "llm.config.intermediate_size=704",
            "llm.config.num_hidden_layers=4",
            # the balance pays where the encoder is a real part of the step: a heavier tower
            *(HEAVY_ENCODER if mode.startswith("dp") else []),
        ]
    )
    strategy = instantiate(cfg.resolution)
    torch.manual_seed(0)
    model = build_model(cfg, strategy, VOCAB, IMAGE_ID)
    model.train()
    model.segment_attention = mode != "none"  # none: transformers' block-diagonal mask
    if mode in ("cp", "none+segments"):
        use_context_parallel(model.llm)
        group = dist.new_group([0, 1]) if mode == "cp" else None
        model.context_parallel = ContextParallel(group, world, rank)
    if mode == "dp+balance":
        model.encoder_balance = EncoderBalance(dist.new_group([0, 1]), world, rank, 1)
    replica = rank if mode.startswith("dp") else 0
    # dp: equal tokens, but replica 0 drew image samples and replica 1 text-only ones
    images = 0 if mode.startswith("dp") and replica == 1 else 2
    batch = packed_batch(model, strategy, 2, length, seed=1 + replica, max_images=images)
    kept: dict = {}

    def pack(t):
        storage = t.untyped_storage()
        kept[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    times = []
    for step in range(steps + 1):
        kept.clear()
        if world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(**batch).loss
        saved = sum(kept.values())
        loss.backward()
        model.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - t0)
    own, encoded, seconds = model.encoder_stats.take()
    row = {
        "mode": mode,
        "rank": rank,
        "tokens": int(batch["input_ids"].numel()),
        "step_s": sum(times) / len(times),
        "activation_bytes": saved,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "own_views": own // (steps + 1),
        "encoded_views": encoded // (steps + 1),
        "encoder_s": seconds / (steps + 1),
    }
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
