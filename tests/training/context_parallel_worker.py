"""One rank of the context-parallel check (run by test_context_parallel.py, 1 or 2 processes).

Builds the tiny LLaVA-NeXT-style model (anyres views of several sizes, newline tokens) with a
fixed seed, one packed batch of a few thousand tokens holding several samples with images at
varied positions, runs forward and backward and saves the loss and every gradient. With two
processes each rank runs the LLM on half of every row (``trainer.context_parallel=2``)."""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

import mmfw
from mmfw.build import build_model
from mmfw.models.context_parallel import ContextParallel, check_heads, use_context_parallel
from mmfw.models.encoder_balance import EncoderBalance
from mmfw.resolution.layout import count_image_tokens

IMAGE_ID, VOCAB = 5, 160


def init_ranks() -> tuple[int, int]:
    """(world size, rank) of this process; under torchrun a gloo group is started."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    return world, dist.get_rank() if world > 1 else 0


def packed_batch(model, strategy, rows: int, length: int, seed: int, max_images: int = 2) -> dict:
    """``rows`` rows of ``length`` tokens, each packing samples of text and 0-``max_images``
    images."""
    g = torch.Generator().manual_seed(seed)
    grid = model.feature_grid
    sizes = [(40, 70), (90, 30), (64, 64), (30, 100), (120, 50)]
    ids = torch.zeros(rows, length, dtype=torch.long)
    labels = torch.full((rows, length), -100)
    positions = torch.zeros(rows, length, dtype=torch.long)
    sample_ids = torch.full((rows, length), -1)
    images, layouts = [], []
    for r in range(rows):
        at, sample = 0, 0
        while True:
            pieces = []
            for _ in range(int(torch.randint(0, max_images + 1, (1,), generator=g))):
                w, h = sizes[int(torch.randint(0, len(sizes), (1,), generator=g))]
                pixels = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
                views, layout = strategy(pixels)
                pieces.append(("text", int(torch.randint(20, 200, (1,), generator=g))))
                pieces.append(("image", (views, layout, count_image_tokens(layout, grid))))
            pieces.append(("text", int(torch.randint(50, 400, (1,), generator=g))))
            n = sum(p[1] if p[0] == "text" else p[1][2] for p in pieces)
            if at + n > length:
                break
            start = at
            for kind, what in pieces:
                if kind == "text":
                    ids[r, at : at + what] = torch.randint(10, VOCAB, (what,), generator=g)
                    labels[r, at + what // 2 : at + what] = ids[r, at + what // 2 : at + what]
                    at += what
                else:
                    views, layout, k = what
                    ids[r, at : at + k] = IMAGE_ID
                    images.append(views)
                    layouts.append(layout)
                    at += k
            positions[r, start:at] = torch.arange(at - start)
            sample_ids[r, start:at] = sample
            sample += 1
    return {
        "input_ids": ids,
        "attention_mask": (sample_ids >= 0).long(),
        "labels": labels,
        "images": images,
        "layouts": layouts,
        "position_ids": positions,
        "sample_ids": sample_ids,
    }


def main(out: str, length: int, reduction: str, checkpointing: bool, attn: str, mode: str) -> None:
    """``mode``: cp (2 ranks split one batch), cp+balance (and share its views), dp+balance
    (2 replicas, one of them text-only, share their views). One process computes
    the same loss (for dp: the mean of the two replicas' losses) unsplit."""
    world, rank = init_ranks()
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava_next_7b",
            f"trainer.attn_implementation={attn}",
            "llm.config.max_position_embeddings=8192",
        ]
    )
    strategy = hydra_instantiate(cfg.resolution)
    torch.manual_seed(0)
    model = build_model(cfg, strategy, VOCAB, IMAGE_ID)
    if checkpointing:
        model.enable_gradient_checkpointing(["encoder", "llm"])
    model.train()
    model.segment_attention = False  # the reference: transformers' own block-diagonal mask
    replicas = 2 if mode.startswith("dp") else 1
    if world > 1:
        if mode.startswith("cp"):
            check_heads(model.llm.config, world)
            use_context_parallel(model.llm)
            model.context_parallel = ContextParallel(dist.new_group([0, 1]), world, rank)
        if mode.endswith("balance"):
            model.encoder_balance = EncoderBalance(
                dist.new_group([0, 1]), world, rank, replica_size=world // replicas
            )
    mine = [rank] if world > 1 and replicas > 1 else list(range(replicas))
    loss, images, image_tokens = 0.0, [], 0
    for replica in mine:
        # replica 0 draws two rows with images, replica 1 one text-only row: a rank without
        # views still encodes its share of the other's
        rows, most = (2, 2) if replica == 0 else (1, 0)
        batch = packed_batch(model, strategy, rows, length, seed=1 + replica, max_images=most)
        image_tokens += int((batch["input_ids"] == IMAGE_ID).sum())
        part = model(**batch, loss_reduction=reduction).loss
        (part / len(mine)).backward()
        loss = loss + part.detach() / replicas
        images.append(sum(int(v.shape[0]) for v in batch["images"]))
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    if world > 1:  # what DDP's averaging over the ranks gives (a text-only rank: zeros)
        grads = {}
        for n, p in model.named_parameters():
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            some = torch.tensor(float(p.grad is not None))
            dist.all_reduce(g)
            dist.all_reduce(some)
            if some > 0:
                grads[n] = g / world
        if replicas > 1:
            dist.all_reduce(loss)
        stats = model.encoder_stats.take()
        every = [None] * world
        dist.all_gather_object(every, stats)
    else:
        every = None
    if rank == 0:
        torch.save(
            {
                "loss": loss,
                "grads": grads,
                "image_tokens": image_tokens,
                "encoded": every,
                "views": images,
            },
            out,
        )
    if world > 1:
        dist.destroy_process_group()


def hydra_instantiate(node):
    from hydra.utils import instantiate

    return instantiate(node)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", *sys.argv[5:7])
