"""trainer.context_parallel: the sequence split over ranks gives the single-process numbers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mmfw.models.context_parallel import ContextParallel, check_heads
from mmfw.models.encoder_balance import plan_views
from mmfw.training.batching import derive_accumulation
from tests.conftest import REPO

WORKER = REPO / "tests" / "training" / "context_parallel_worker.py"


def _run(out, args: list[str], procs: int, port: int) -> dict:
    if procs == 1:
        cmd = [sys.executable, str(WORKER)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={procs}",
            f"--master-port={port}",
            str(WORKER),
        ]
    proc = subprocess.run([*cmd, str(out), *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return torch.load(out)


@pytest.mark.parametrize(
    ("length", "reduction", "checkpointing", "attn", "mode", "port"),
    [
        # a packed 4k-token batch split over 2 ranks that also share its ~50 image views,
        # per-sample loss weights, blocks recomputed in backward
        (4100, "square", "1", "sdpa", "cp+balance", 29631),
        # 2 data-parallel replicas share their views; replica 1 has none of its own
        (2100, "token", "0", "sdpa", "dp+balance", 29632),
        # an odd length (padded to the split), the additive-mask kernel, the per-sample loss
        pytest.param(1001, "sample", "0", "eager", "cp", 29633, marks=pytest.mark.slow),
        pytest.param(4100, "token", "0", "sdpa", "cp", 29634, marks=pytest.mark.slow),
    ],
)
def test_two_ranks_give_the_one_process_loss_and_gradients(
    length, reduction, checkpointing, attn, mode, port, tmp_path
):
    args = [str(length), reduction, checkpointing, attn, mode]
    one = _run(tmp_path / "one.pt", args, 1, port)
    two = _run(tmp_path / "two.pt", args, 2, port)
    assert one["image_tokens"] > 1000 if length > 4000 else one["image_tokens"] > 0
    torch.testing.assert_close(two["loss"], one["loss"], atol=1e-5, rtol=0)
    assert set(two["grads"]) == set(one["grads"]) and len(one["grads"]) > 50
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, atol=1e-5, rtol=0, msg=name)
    (own0, done0, _), (own1, done1, _) = two["encoded"]
    if mode == "dp+balance":  # each rank encoded half of both replicas' views
        assert own1 == 0 < own0 and abs(done0 - done1) <= 1 and done0 + done1 == own0
    elif mode == "cp+balance":  # the group's views, once, half each
        assert own0 == own1 and abs(done0 - done1) <= 1 and done0 + done1 == own0
    else:  # every rank of the group encodes them all
        assert done0 == done1 == own0


def test_the_balance_plan_evens_the_pixels_and_prefers_home():
    # replica 0 (ranks 0, 1) has six 64x64 views, replica 1 (ranks 2, 3) one
    manifests = [[(64, 64)] * 6, [(64, 64)] * 6, [(64, 64)], [(64, 64)]]
    owner = plan_views(manifests, world=4, replica_size=2)
    load = [sum(1 for r in owner.values() if r == rank) for rank in range(4)]
    assert sorted(load) == [1, 2, 2, 2] and len(owner) == 7
    assert owner[(1, 0)] in (2, 3)  # the single view of replica 1 stays home
    assert owner == plan_views(manifests, world=4, replica_size=2)  # every rank agrees


def test_the_group_size_must_divide_the_heads_and_the_processes():
    config = type("Config", (), {"num_attention_heads": 8, "num_key_value_heads": 2})()
    check_heads(config, 2)
    with pytest.raises(
        ValueError, match=r"context_parallel=4 must divide .* key/value heads \(2\)"
    ):
        check_heads(config, 4)
    with pytest.raises(ValueError, match=r"context_parallel=3 must divide the 4 process"):
        derive_accumulation(global_batch_size=8, micro_batch=4, world=4, context_parallel=3)
    # 4 processes in groups of 2 are 2 replicas: a global batch of 8 is 4 x 1 x 2
    assert derive_accumulation(global_batch_size=8, micro_batch=4, world=4, context_parallel=2) == 1


def test_hyper_attention_refuses_the_split(tmp_path):
    from tests.helpers import tiny_components

    _, parts = tiny_components(tmp_path, "experiment=tiny_mplug_owl3_7b")
    model = parts.model
    model.context_parallel = ContextParallel(None, 2, 0)  # refused before any collective
    ids = torch.full((1, 8), 7)
    with pytest.raises(ValueError, match="context_parallel needs inline fusion"):
        model(ids, torch.ones_like(ids), labels=ids)
