"""Sharded sources: `mmfw-data convert` → litdata chunks → disjoint, resumable reading."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from torch.utils.data import DataLoader

from mmfw.data.dataset import ConversationDataset
from mmfw.data.sampler import GlobalBatchSampler
from mmfw.data.sharded import ShardedSource, pack_images, unpack_images
from tests.conftest import run_cli

N = 3000


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    for c, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (8, 8), colour).save(root / f"{c}.png")
    records = []
    for i in range(N):
        r = {"id": f"r{i}", "conversations": [{"from": "human", "value": f"<image>\nWhat colour? {i}"},
                                               {"from": "gpt", "value": ["red", "green", "blue"][i % 3]}]}  # fmt: skip
        r["image"] = f"{i % 3}.png" if i % 100 else "gone.png"  # every 100th is missing
        records.append(r)
    (root / "data.json").write_text(json.dumps(records))
    out = run_cli("mmfw-data", "convert", str(root / "data.json"), str(root / "shards"),
                  "--chunk-bytes", "64KB")  # fmt: skip
    assert f"wrote {N} records" in out.stdout and "2970 images embedded, 30 not found" in out.stdout
    return root, records


def test_framing_round_trips():
    blobs = [b"abc", None, b"", b"\x00" * 5]
    assert unpack_images(pack_images(blobs)) == blobs
    assert unpack_images(b"") == []


def test_converted_records_carry_their_images(converted):
    root, records = converted
    src = ShardedSource(path=str(root / "shards"))
    # The preflight's count comes from index.json, before any record is read.
    assert src.size_hint() == N and src._records is None
    assert ShardedSource(path=str(root / "shards"), max_samples=7).size_hint() == 7
    recs = src.records()
    assert len(recs) == N and len(list((root / "shards").glob("chunk-*.bin"))) > 5
    for i in (0, 1, 2, 1234, N - 1):
        got = recs[i]
        assert got["conversations"] == records[i]["conversations"]
        if i % 100:
            assert got["image"] == [(root / records[i]["image"]).read_bytes()]
        else:
            assert got["image"] == ["gone.png"]  # kept as a path: skipped as missing_image
    chars, images = src.estimates()
    assert len(chars) == N and set(images.tolist()) == {1}
    assert len(ShardedSource(path=str(root / "shards"), max_samples=10).records()) == 10


def _ids(batch):
    return [it.record.id for it in batch]


def test_two_ranks_two_workers_read_disjoint_records_and_resume_exactly(converted):
    root, _ = converted
    src = ShardedSource(path=str(root / "shards"))
    ds = ConversationDataset([src])
    seen, per_rank = [], []
    for rank in range(2):
        sampler = GlobalBatchSampler(
            [N], None, seed=4, micro_batch=25, accumulate=2, rank=rank, world=2
        )
        loader = DataLoader(ds, batch_size=25, sampler=sampler, num_workers=2, collate_fn=_ids)
        batches = list(loader)
        per_rank.append(batches)
        seen += [i for b in batches for i in b]
    assert len(seen) == N and len(set(seen)) == N  # every record once over ranks and workers
    # Resume rank 0 after 8 micro-batches (4 optimizer steps): the continuation is identical.
    sampler = GlobalBatchSampler([N], None, seed=4, micro_batch=25, accumulate=2, rank=0, world=2)
    sampler.resume_at(0, 8)
    loader = DataLoader(ds, batch_size=25, sampler=sampler, num_workers=2, collate_fn=_ids)
    assert list(loader) == per_rank[0][8:]


def test_a_source_that_was_not_converted_says_how(tmp_path):
    with pytest.raises(FileNotFoundError, match="mmfw-data convert"):
        ShardedSource(path=str(tmp_path)).records()
    out = run_cli(
        "mmfw-data", "convert", str(tmp_path / "nope.json"), str(tmp_path / "o"), check=False
    )
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_a_sharded_source_trains(converted, tmp_path):
    import mmfw
    from mmfw.training.run import train
    from tests.conftest import SMALL_TASK

    root, _ = converted
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            "data=llava_sharded",
            f"data.sources.main.path={root / 'shards'}",
            "data.sources.main.max_samples=300",
            "data.batch_size=8",
            "data.num_workers=2",
            "logger=csv",
            "trainer.max_steps=3",
            "evaluate.at_end=false",
            "trainer.enable_progress_bar=false",
        ]  # fmt: skip
    )
    metrics = train(cfg, tmp_path / "run")
    assert metrics["step"] == 3
    # Record 0 of the first 300 has a missing image: counted if drawn, never fatal.
    assert set(metrics["data/skipped"]) <= {"missing_image"}
