"""Run by test_benchmarks under torch.distributed.run: each rank answers its share of a
benchmark's questions with the run's model; rank 0 writes the gathered metrics and rows."""

from __future__ import annotations

import json
import sys

import torch.distributed as dist
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mmfw.runs import load_run
from mmfw.training.in_training_eval import gather_rows

run_dir, bench_yaml, out = sys.argv[1:4]
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
run = load_run(run_dir)
bench = instantiate(OmegaConf.load(bench_yaml))
rows, metrics = bench.run(run.model, run.processor, rank=rank, world=world, gather=gather_rows)
if rank == 0:
    with open(out, "w") as f:
        json.dump({"metrics": metrics, "rows": rows}, f)
dist.barrier()
dist.destroy_process_group()
