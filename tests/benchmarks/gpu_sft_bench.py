"""LLaVA-style SFT throughput on one GPU, random weights:
``python -m tests.benchmarks.gpu_sft_bench --out bench.json [--tiny] [--budget S]``.

The GPU form is ``experiment=llava15_7b``: CLIP ViT-L/14-336 (frozen, as LLaVA-1.5's SFT) +
mlp2x_gelu + Vicuna-7B, trained through ``mmfw-train`` itself under FSDP2 on one device with
activation checkpointing on the LLM, on generated LLaVA-1.5-like records (one 336x336 image =
576 tokens, answers of lognormal length). Each variant (packing on and off) is one short run;
its tokens/s, ``train/mfu`` and ``train/mfu_without_encoder`` are the medians of the logged
steps after the warm-up ones, its peak GPU memory is set beside ``mmfw-plan``'s memory block for
the same overrides. ``--tiny`` is the CPU form for the check's dry run (experiment=tiny_llava,
64x64 images, one variant). Writes one JSON object to ``--out`` and prints a table.

Not measured yet: torch.compile on/off (mmfw has no compile switch yet) and a torch.profiler
trace; both are reported as such in the JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MMFW_BIN") or Path(sys.executable).parent)
WORDS = [
    "the",
    "a",
    "red",
    "blue",
    "green",
    "small",
    "large",
    "circle",
    "square",
    "image",
    "shows",
    "left",
    "right",
    "top",
]
WARMUP = 2  # logged steps left out of the medians (allocator warm-up, first kernels)

GPU = {
    "image": 336,
    "records": 256,
    "steps": 6,
    "overrides": [
        "experiment=llava15_7b",
        "trainer=fsdp",
        "trainer.devices=1",
        "trainer.gpu=h200",
        "trainer.attn_implementation=sdpa",
        "trainer.activation_checkpointing=[llm]",
        "data.batch_size=16",
        "data.global_batch_size=16",
        "data.num_workers=4",
    ],
    "variants": {
        "packed_4k": ["data.packing=true", "data.max_length=4096"],
        "padded": ["data.packing=false", "data.max_length=2048"],
    },  # fmt: skip
}
TINY = {
    "image": 64,
    "records": 48,
    "steps": 4,
    "overrides": ["experiment=tiny_llava", "data.batch_size=8", "data.num_workers=0"],
    "variants": {"packed": ["data.packing=true", "data.max_length=1024"]},
}
COMMON = [
    "data=llava_json",
    "logger=csv",
    "evaluate.at_end=false",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "trainer.val_check_interval=null",
    "checkpoint.every_n_train_steps=null",
]


def make_records(root: Path, n: int, size: int, seed: int = 0) -> Path:
    """LLaVA-1.5-like SFT records: one image each, a short question, a lognormal answer."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        name = f"img{i % 8}.png"
        if i < 8:
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name)
        words = int(np.clip(rng.lognormal(4.3, 0.8), 4, 600))
        records.append(
            {
                "id": str(i),
                "image": name,
                "conversations": [
                    {"from": "human", "value": "<image>\nDescribe the image in detail."},
                    {"from": "gpt", "value": " ".join(rng.choice(WORDS, size=words))},
                ],
            }
        )
    path = root / "sft.json"
    path.write_text(json.dumps(records))
    return path


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-8000:])
    return proc


def step_medians(run_dir: Path) -> dict:
    """Medians of the per-step metrics after the warm-up steps (csv logger)."""
    rows: dict[str, list[float]] = {}
    for path in run_dir.glob("csv/**/metrics.csv"):
        with path.open() as f:
            for row in csv.DictReader(f):
                for key in ("train/tokens_per_s", "train/mfu", "train/mfu_without_encoder"):
                    if row.get(key):
                        rows.setdefault(key, []).append(float(row[key]))
    return {k: round(statistics.median(v[WARMUP:] or v), 5) for k, v in rows.items()}


def plan_memory(overrides: list[str], timeout: float) -> dict | None:
    try:
        proc = _run([str(BIN / "mmfw-plan"), *overrides, "plan.format=json"], timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout[proc.stdout.index("{") :]).get("memory")


def variant(name: str, overrides: list[str], root: Path, deadline: float) -> dict:
    run_dir = root / name
    cmd = [str(BIN / "mmfw-train"), *overrides, f"hydra.run.dir={run_dir}"]
    t0 = time.monotonic()
    try:
        proc = _run(cmd, max(deadline - t0, 1))
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": round(time.monotonic() - t0, 1)}
    out: dict = {"status": "passed" if proc.returncode == 0 else "failed"}
    out["seconds"] = round(time.monotonic() - t0, 1)
    if proc.returncode != 0:
        out["error"] = proc.stderr[-1500:]
        return out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    out["steps"] = metrics.get("step")
    out["medians_after_warmup"] = step_medians(run_dir)
    keep = ("train/tokens_per_s", "train/mfu", "train/mfu_without_encoder",
            "train/flops_per_token", "data/padding_fraction", "memory/peak_allocated_bytes")  # fmt: skip
    out["run"] = {k: metrics[k] for k in keep if k in metrics}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="the CPU form (dry run)")
    parser.add_argument("--budget", type=float, default=230.0, help="seconds for all runs")
    parser.add_argument("--root", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget
    spec = TINY if args.tiny else GPU
    if not args.tiny:
        import torch

        if not torch.cuda.is_available():
            print("gpu_sft_bench: no CUDA device (use --tiny on a CPU)")
            args.out.write_text(json.dumps({"status": "skipped", "reason": "no CUDA"}) + "\n")
            return 0
    import shutil
    import tempfile

    root = args.root or Path(tempfile.mkdtemp(prefix="mmfw-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, spec, root, deadline)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


def _bench(args: argparse.Namespace, spec: dict, root: Path, deadline: float) -> int:
    data = make_records(root, spec["records"], spec["image"])
    base = [*spec["overrides"], *COMMON, f"data.sources.main.path={data}",
            f"trainer.max_steps={spec['steps']}"]  # fmt: skip
    result: dict = {
        "config": "tiny" if args.tiny else "llava15_7b",
        "overrides": base,
        "warmup_steps": WARMUP,
        "variants": {},
        "compile": {"status": "not measured", "reason": "mmfw has no torch.compile switch yet"},
        "profile": {"status": "not measured", "reason": "no torch.profiler step yet"},
    }
    first = [*base, *next(iter(spec["variants"].values()))]
    if not args.tiny:  # the plan's "fits" against this GPU, not its default 80 GB
        import torch

        first.append(
            f"plan.gpu_memory_gb={torch.cuda.get_device_properties(0).total_memory / 1e9:.1f}"
        )
    result["plan_memory"] = plan_memory(first, max(deadline - time.monotonic(), 1))
    for name, extra in spec["variants"].items():
        if deadline - time.monotonic() < 10:
            result["variants"][name] = {"status": "skipped", "reason": "out of --budget"}
            continue
        result["variants"][name] = variant(name, [*base, *extra], root, deadline)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plan_total = (result["plan_memory"] or {}).get("per_device", {}).get("total")
    print(f"\n{'variant':<12}{'status':>8}{'tokens/s':>11}{'mfu':>8}{'mfu-enc':>9}{'peak GiB':>10}")
    for name, r in result["variants"].items():
        m, run = r.get("medians_after_warmup", {}), r.get("run", {})
        peak = run.get("memory/peak_allocated_bytes")
        print(
            f"{name:<12}{r['status']:>8}{m.get('train/tokens_per_s', float('nan')):>11.0f}"
            f"{m.get('train/mfu', float('nan')):>8.3f}"
            f"{m.get('train/mfu_without_encoder', float('nan')):>9.3f}"
            f"{(peak or float('nan')) / 2**30:>10.1f}"
        )
    if plan_total:
        print(f"mmfw-plan model states per device: {plan_total / 2**30:.1f} GiB")
    ok = all(r["status"] in ("passed", "skipped") for r in result["variants"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
