"""The global-batch sampler: deterministic, split across ranks, resumable mid-epoch."""

from __future__ import annotations

import pytest
import torch

from mmfw.data.sampler import GlobalBatchSampler


def sampler(**kw):
    args = {
        "sizes": [50],
        "fractions": None,
        "seed": 3,
        "micro_batch": 4,
        "accumulate": 1,
        "rank": 0,
        "world": 1,
    }
    args.update(kw)
    return GlobalBatchSampler(args.pop("sizes"), args.pop("fractions"), **args)


def test_same_seed_same_order_and_epochs_differ():
    a, b = sampler(), sampler()
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert sorted(first) == sorted(set(first))  # one source: a permutation, no repeats


def test_ranks_split_each_global_batch_and_match_one_process():
    one = list(sampler(micro_batch=8))
    ranks = [list(sampler(micro_batch=4, rank=r, world=2)) for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1])
    for step in range(len(one) // 8):
        union = ranks[0][step * 4 : step * 4 + 4] + ranks[1][step * 4 : step * 4 + 4]
        assert sorted(union) == sorted(one[step * 8 : step * 8 + 8])


def test_accumulation_and_ranks_cover_the_same_global_batches():
    ref = list(sampler(micro_batch=8))
    parts = [list(sampler(micro_batch=2, accumulate=2, rank=r, world=2)) for r in range(2)]
    for step in range(len(ref) // 8):
        got = parts[0][step * 4 : step * 4 + 4] + parts[1][step * 4 : step * 4 + 4]
        assert sorted(got) == sorted(ref[step * 8 : step * 8 + 8])


def test_resume_mid_epoch_continues_exactly():
    full = sampler(micro_batch=4, world=2, rank=1)
    full.set_epoch(2)
    expected = list(full)
    resumed = sampler(micro_batch=4, world=2, rank=1)
    resumed.resume_at(epoch=2, micro_batches_done=3)
    resumed.set_epoch(2)
    assert list(resumed) == expected[3 * 4 :]
    resumed.set_epoch(3)  # the skip applies once, to its epoch only
    full.set_epoch(3)
    assert list(resumed) == list(full)


def test_mixture_follows_the_weights():
    s = GlobalBatchSampler([100, 100], [0.75, 0.25], seed=0, micro_batch=10)
    order = torch.cat([s.order(e) for e in range(20)])
    share = (order < 100).double().mean().item()
    assert share == pytest.approx(0.75, abs=0.02)


def test_too_little_data_for_one_global_batch_is_named():
    with pytest.raises(ValueError, match="fewer than one global batch of 64"):
        sampler(sizes=[50], micro_batch=8, accumulate=4, world=2)
