"""Data at scale: padding (plain, length-grouped, packed), dataloader throughput per resolution
strategy, and the lazy index of a 1M-record LLaVA JSON against loading it whole.

Run with ``make bench``; prints numbers and ratios measured in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader

import mmfw
from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.packing import pack_rows
from mmfw.data.processor import ImageTokenCounter, SampleProcessor
from mmfw.data.sampler import GlobalBatchSampler, TokenBudgetBatchSampler
from mmfw.data.sources import JsonSource
from mmfw.resolution.layout import FeatureGrid
from tests.helpers import tiny_components

pytestmark = pytest.mark.bench
SIZES = [(640, 480), (1024, 768), (300, 1200), (1600, 400), (800, 800), (336, 336)]
MAX_LENGTH = 4096
WORDS = [
    "the",
    "a",
    "small",
    "red",
    "square",
    "left",
    "of",
    "blue",
    "image",
    "shows",
    "answer",
    "question",
]


def mixed_dataset(root, n: int = 512):
    """Mixed resolutions, lengths lognormal from a few words to a few hundred, 20% text-only."""
    rng = np.random.default_rng(0)
    for k, (w, h) in enumerate(SIZES):
        small = rng.integers(0, 255, (max(1, h // 20), max(1, w // 20), 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(root / f"{k}.jpg", quality=90)
    records = []
    for i in range(n):
        words = int(np.clip(rng.lognormal(3.5, 1.0), 2, 600))
        answer = " ".join(rng.choice(WORDS, size=words))
        r = {"id": str(i), "conversations": [{"from": "human", "value": "Describe it."},
                                              {"from": "gpt", "value": answer}]}  # fmt: skip
        if rng.random() > 0.2:
            r["image"] = f"{rng.integers(len(SIZES))}.jpg"
            r["conversations"][0]["value"] = "<image>\nDescribe it."
        records.append(r)
    (root / "mixed.json").write_text(json.dumps(records))
    return root / "mixed.json"


def processor_for(tokenizer, resolution: str) -> SampleProcessor:
    cfg = mmfw.compose([f"resolution={resolution}", "template=vicuna_v1"])
    return SampleProcessor(
        tokenizer=tokenizer,
        template=instantiate(cfg.template),
        strategy=instantiate(cfg.resolution),
        counter=ImageTokenCounter(FeatureGrid(patch=14)),  # CLIP ViT-L/14
        max_length=16384,
    )


def padding(batches: list[list[int]], lengths: list[int]) -> float:
    pad = total = 0
    for b in batches:
        longest = max(lengths[i] for i in b)
        pad += sum(longest - lengths[i] for i in b)
        total += longest * len(b)
    return pad / total


def packed_padding(micro: list[list[int]], lengths: list[int], images: list[int]) -> float:
    pad = total = 0
    for b in micro:
        rows = pack_rows([lengths[i] for i in b], [images[i] for i in b], MAX_LENGTH, None)
        width = max(sum(lengths[b[i]] for i in row) for row in rows)
        used = sum(lengths[i] for i in b)
        pad += width * len(rows) - used
        total += width * len(rows)
    return pad / total


def test_padding_plain_grouped_packed(tmp_path):
    from mmfw.data.datamodule import VLDataModule

    path = mixed_dataset(tmp_path)
    _, comp = tiny_components(tmp_path)
    proc = processor_for(comp.tokenizer, "pad_336")
    src = JsonSource(path=str(path))
    ds = ConversationDataset([src])
    samples = [proc.training_sample(ds[i].record, ds[i].image_root) for i in range(len(ds))]
    lengths = [len(s.input_ids) for s in samples]
    images = [len(s.images) for s in samples]
    dm = VLDataModule(sources={"mixed": src})
    dm.attach(proc)
    estimates, modalities = dm.length_estimates(ds)
    n, micro = len(ds), 16
    kw = dict(seed=0, micro_batch=micro, accumulate=1, rank=0, world=1)
    plain = list(GlobalBatchSampler([n], None, **kw))
    grouped = list(
        GlobalBatchSampler(
            [n], None, **kw, lengths=estimates, modalities=modalities, group_by_length=True
        )
    )
    chunks = [plain[i : i + micro] for i in range(0, n, micro)]
    budget = TokenBudgetBatchSampler(GlobalBatchSampler([n], None, **kw), estimates, 4 * MAX_LENGTH)
    result = {
        "plain padding": padding(chunks, lengths),
        "length-grouped": padding([grouped[i : i + micro] for i in range(0, n, micro)], lengths),
        "packed (16 samples/micro-batch)": packed_padding(chunks, lengths, images),
        f"packed + token budget {4 * MAX_LENGTH}": packed_padding(list(budget), lengths, images),
    }
    print(f"\npadding fraction, {n} records (pad_336, 80% with one image, text 2-600 words):")
    print(f"  mean tokens {np.mean(lengths):.0f}, min {min(lengths)}, max {max(lengths)}")
    base = result["plain padding"]
    for name, value in result.items():
        print(f"  {name:<34} {value * 100:6.2f}%   (x{value / base:.3f} of plain)")
    assert result["length-grouped"] < base
    assert result["packed (16 samples/micro-batch)"] < 0.05


@pytest.mark.parametrize("resolution", ["pad_336", "anyres", "hd9", "hd25"])
def test_dataloader_samples_per_second(tmp_path, resolution):
    path = mixed_dataset(tmp_path, 160)
    _, comp = tiny_components(tmp_path)
    proc = processor_for(comp.tokenizer, resolution)
    ds = ConversationDataset([JsonSource(path=str(path))])
    sampler = GlobalBatchSampler([len(ds)], None, seed=0, micro_batch=8, accumulate=1)
    loader = DataLoader(
        ds,
        batch_size=8,
        sampler=sampler,
        num_workers=2,
        collate_fn=TrainingCollator(proc, comp.tokenizer.pad_token_id),
    )
    it = iter(loader)
    next(it)  # workers started, first batch out
    t0, count, views = time.perf_counter(), 0, 0
    for batch in it:
        count += batch["num_samples"]
        views += sum(v.shape[0] for v in batch["images"])
    rate = count / (time.perf_counter() - t0)
    print(
        f"\ndataloader, 2 workers, {resolution:<8}: {rate:7.1f} samples/s ({views / count:.2f} views/sample)"
    )
    assert count == len(ds) - 8


def _measure(code: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_index_of_a_million_records(tmp_path):
    n = 1_000_000
    path = tmp_path / "big.json"
    with path.open("w") as f:
        f.write("[")
        for i in range(n):
            f.write(
                ("," if i else "")
                + json.dumps(
                    {
                        "id": f"{i:07d}",
                        "image": f"coco/train2017/{i:012d}.jpg",
                        "conversations": [
                            {"from": "human", "value": "<image>\nWhat is in the picture?"},
                            {"from": "gpt", "value": f"A picture number {i} of a cat."},
                        ],
                    }  # fmt: skip
                )
            )
        f.write("]")
    env = {**os.environ, "MMFW_CACHE": str(tmp_path / "cache")}
    prelude = "import json, time, random; t = time.perf_counter()\n"
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child started from this
    # (large) pytest process would report the parent's peak.
    report = (
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'s': time.perf_counter() - t, 'rss_mb': int(hwm) / 1024}))"
    )
    whole = _measure(
        prelude + f"d = json.load(open({str(path)!r}))\nassert len(d) == {n}\n" + report, env
    )
    build = _measure(
        prelude
        + "from mmfw.data.record_index import IndexedRecords\n"
        + f"r = IndexedRecords({str(path)!r})\nassert len(r) == {n}\n"
        + report,
        env,
    )
    reopen = _measure(
        "from mmfw.data.record_index import IndexedRecords\n"
        + prelude
        + f"r = IndexedRecords({str(path)!r})\n"
        + f"for i in random.Random(0).sample(range({n}), 10000): r[i]\n"
        + report,
        env,
    )
    size = path.stat().st_size / 2**20
    print(f"\n1M-record LLaVA JSON ({size:.0f} MiB):")
    print(f"  json.load whole          {whole['s']:6.2f} s   peak RSS {whole['rss_mb']:7.0f} MiB")
    print(
        f"  build index (once)       {build['s']:6.2f} s   peak RSS {build['rss_mb']:7.0f} MiB"
        f"   (x{build['rss_mb'] / whole['rss_mb']:.2f} memory, x{build['s'] / whole['s']:.2f} time)"
    )
    print(
        f"  open index + 10k random reads {reopen['s']:5.2f} s   peak RSS {reopen['rss_mb']:7.0f} MiB"
        "   (what each worker pays)"
    )
    assert build["rss_mb"] < whole["rss_mb"]
