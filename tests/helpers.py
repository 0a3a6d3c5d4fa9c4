"""Builders for tests: a tiny config, tokenizer and model without the CLI."""

from __future__ import annotations

import struct
from pathlib import Path

from omegaconf import DictConfig

import mmfw
from mmfw.build import Components, build_components, build_tokenizer
from tests.conftest import SMALL_TASK

# A tiny run trained in-process (train(cfg, dir)): no workers, CSV only, no final evaluation.
IN_PROCESS_RUN = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "data.batch_size=4",
    "data.num_workers=0",
    "logger=csv",
    "evaluate.at_end=false",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
]


def tree(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` → its sha256: two calls compare a folder byte for byte."""
    import hashlib

    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def tiny_config(*overrides: str) -> DictConfig:
    return mmfw.compose(["experiment=tiny_llava", *SMALL_TASK, *overrides])


def tiny_components(tmp_path: Path, *overrides: str) -> tuple[DictConfig, Components]:
    """Config, tokenizer (trained on the small task's text) and model, as a run builds them."""
    from hydra.utils import instantiate

    cfg = tiny_config(*overrides)
    data = instantiate(cfg.data)
    tokenizer = build_tokenizer(cfg, tmp_path / "tokenizer", data.texts)
    return cfg, build_components(cfg, tokenizer)


def read_wandb_records(run_file: Path) -> list:
    """Records of a wandb ``.wandb`` transaction log (LevelDB log format) as protobufs."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = run_file.read_bytes()
    block, pos, chunks, buf = 32768, 7, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            break
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            chunks.append(buf + chunk)
    records = []
    for raw in chunks:
        rec = pb.Record()
        rec.ParseFromString(raw)
        records.append(rec)
    return records
