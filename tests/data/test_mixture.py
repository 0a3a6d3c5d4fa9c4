"""Mixture fractions: weights, MM1.5's α, per-kind shares; realized draws follow them."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from mmfw.data.mixture import mixture_fractions
from mmfw.data.sampler import GlobalBatchSampler
from mmfw.data.sources import JsonSource
from mmfw.errors import UserError


def src(category="general", kind="single_image", weight=None, alpha=None, epochs=1.0):
    return JsonSource(
        path="unused.json", category=category, kind=kind, weight=weight, alpha=alpha, epochs=epochs
    )


def test_weights_normalise_and_alpha_is_relative_to_the_reference_category():
    sources = {
        "general_a": src(weight=2.0),
        "general_b": src(),  # weight null: 1
        "math": src("math", alpha=0.5),
        "science": src("science", alpha=0.1),
    }
    sizes = dict.fromkeys(sources, 100)
    f = mixture_fractions(sources, sizes)
    # general weighs 3; math 0.5 x 3 = 1.5; science 0.1 x 3 = 0.3 → total 4.8
    assert f == pytest.approx(
        {"general_a": 2 / 4.8, "general_b": 1 / 4.8, "math": 1.5 / 4.8, "science": 0.3 / 4.8}
    )


def test_kind_weights_split_first_then_sources_within():
    sources = {
        "general": src(),
        "math": src("math", alpha=1.0),
        "multi": src("multi_image", kind="multi_image"),
        "text": src("text", kind="text_only"),
    }
    f = mixture_fractions(
        sources,
        dict.fromkeys(sources, 10),
        kind_weights={"single_image": 0.8, "multi_image": 0.1, "text_only": 0.1},
    )
    assert f == pytest.approx({"general": 0.4, "math": 0.4, "multi": 0.1, "text": 0.1})


def test_mixture_errors_name_the_keys():
    with pytest.raises(UserError, match="data.alpha_reference"):
        mixture_fractions({"math": src("math", alpha=0.5)}, {"math": 5})
    with pytest.raises(UserError, match="data.kind_weights has no share for kind"):
        mixture_fractions(
            {"a": src(), "t": src(kind="text_only")},
            {"a": 1, "t": 1},
            kind_weights={"single_image": 1.0},
        )
    with pytest.raises(ValueError, match="weight or alpha, not both"):
        src(weight=1.0, alpha=0.5)
    with pytest.raises(ValueError, match="kind='video_clip'"):
        src(kind="video_clip")


def test_a_source_yaml_with_alpha_and_no_weight_is_accepted():
    """``weight`` defaults to null (1 unless alpha is given), so alpha alone is enough."""
    from hydra.utils import instantiate

    for target in ("mmfw.data.sources.JsonSource", "mmfw.data.tsv_source.TsvSource"):
        math = instantiate({"_target_": target, "path": "m.json", "category": "math", "alpha": 0.5})
        assert math.weight is None and math.alpha == 0.5
    general = instantiate({"_target_": "mmfw.data.sources.JsonSource", "path": "g.json"})
    assert general.weight is None
    fractions = mixture_fractions({"general": general, "math": math}, {"general": 4, "math": 4})
    assert fractions == pytest.approx({"general": 2 / 3, "math": 1 / 3})


def test_realized_draws_follow_the_configured_fractions():
    fractions = [0.6, 0.3, 0.1]
    sampler = GlobalBatchSampler([50, 200, 1000], fractions, seed=1, micro_batch=25)
    draws = torch.cat([sampler.order(e) for e in range(8)])
    source = torch.bucketize(draws, torch.tensor([50, 250]), right=True)
    realized = torch.bincount(source, minlength=3).double() / len(draws)
    # 8 epochs x 1250 draws: the binomial standard error is under 0.5 points.
    assert realized.tolist() == pytest.approx(fractions, abs=0.015)


def test_epochs_repeat_a_single_source():
    sampler = GlobalBatchSampler([40], None, seed=0, micro_batch=4, epochs=[2.5])
    order = sampler.order(0).tolist()
    assert len(order) == 100 and sorted(set(order)) == list(range(40))
    counts = torch.bincount(torch.tensor(order))
    assert counts.min() >= 2 and counts.max() <= 3


class Indices(Dataset):
    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, i: int) -> int:
        return i


@pytest.mark.parametrize("fractions", [None, [0.5, 0.5]])
def test_two_ranks_with_two_workers_each_draw_disjoint_shares_of_every_global_batch(fractions):
    sizes = [64] if fractions is None else [32, 32]
    seen = []
    for rank in range(2):
        sampler = GlobalBatchSampler(sizes, fractions, seed=3, micro_batch=4, rank=rank, world=2)
        loader = DataLoader(Indices(), batch_size=4, sampler=sampler, num_workers=2)
        seen.append([i for batch in loader for i in batch.tolist()])
    reference = GlobalBatchSampler(sizes, fractions, seed=3, micro_batch=8).order(0).tolist()
    for step in range(len(seen[0]) // 4):
        got = seen[0][step * 4 : step * 4 + 4] + seen[1][step * 4 : step * 4 + 4]
        assert sorted(got) == sorted(reference[step * 8 : step * 8 + 8])
    if fractions is None:  # a permutation: no record twice across ranks and workers
        assert not set(seen[0]) & set(seen[1]) and len(set(seen[0] + seen[1])) == 64
