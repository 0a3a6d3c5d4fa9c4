"""Packing: rows hold several samples, yet the loss equals the unpacked loss on the same
samples, for every loss reduction; length grouping and token budgets shape the batches."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from mmfw.data.packing import pack_rows
from mmfw.data.sampler import GlobalBatchSampler, TokenBudgetBatchSampler
from mmfw.models.loss import causal_lm_loss
from tests.helpers import tiny_components


def test_pack_rows_respects_length_and_image_caps():
    lengths = [50, 40, 30, 30, 20, 10, 90]
    images = [1, 1, 0, 2, 1, 0, 1]
    rows = pack_rows(lengths, images, max_length=100, max_images=2)
    assert sorted(i for r in rows for i in r) == list(range(7))
    for r in rows:
        assert sum(lengths[i] for i in r) <= 100
        assert sum(images[i] for i in r) <= 2
    assert len(rows) < len(lengths)


@pytest.fixture(scope="module")
def packed_and_padded(tmp_path_factory):
    cfg, comp = tiny_components(tmp_path_factory.mktemp("pack"))
    data = instantiate(cfg.data)
    ds = ConversationDataset(list(data.sources.values()))
    items = [ds[i] for i in range(8)]
    pad = comp.tokenizer.pad_token_id
    padded = TrainingCollator(comp.processor, pad)(items)
    packed = TrainingCollator(comp.processor, pad, packing=True)(items)
    model = comp.model.eval()
    return model, padded, packed


@pytest.mark.parametrize("reduction", ["token", "square", "sample"])
def test_packed_loss_equals_unpacked_loss(packed_and_padded, reduction):
    model, padded, packed = packed_and_padded
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]  # really packed
    keys = ("input_ids", "attention_mask", "labels", "images", "layouts")
    with torch.no_grad():
        a = model(**{k: padded[k] for k in keys}, loss_reduction=reduction).loss
        b = model(
            **{k: packed[k] for k in (*keys, "position_ids", "sample_ids")},
            loss_reduction=reduction,
        ).loss
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (float(a), float(b))


def test_packed_samples_do_not_see_each_other(packed_and_padded):
    """A sample's logits are the same alone in its padded row and packed behind others."""
    model, padded, packed = packed_and_padded
    keys = ("input_ids", "attention_mask", "images", "layouts")
    with torch.no_grad():
        alone = model(**{k: padded[k] for k in keys}).logits
        together = model(**{k: packed[k] for k in (*keys, "position_ids")}).logits
    ids = packed["sample_ids"]
    checked = 0
    for r in range(ids.shape[0]):
        for sid in ids[r].unique().tolist():
            if sid < 0:
                continue
            cols = (ids[r] == sid).nonzero().flatten()
            if cols[0] == 0:
                continue  # the row's first sample: nothing before it to leak
            k = len(cols)
            ref = alone[sid, :k]
            assert torch.allclose(together[r, cols], ref, atol=1e-4), f"sample {sid} leaks"
            checked += 1
    assert checked >= 1


def test_loss_reductions_weight_samples_as_named():
    """Two samples, 1 and 3 target tokens with losses 1 and (3, 3, 3)."""
    vocab = 4
    logits = torch.zeros(1, 6, vocab)
    labels = torch.tensor([[-100, 0, -100, 1, 1, 1]])
    ids = torch.tensor([[0, 0, 1, 1, 1, 1]])
    # Cross-entropy of a zero logit row is log(4) everywhere: make them differ per sample.
    ce = torch.nn.functional.cross_entropy(logits[0, 0:1], torch.tensor([0]))
    for name in ("token", "sample", "square"):
        assert torch.allclose(causal_lm_loss(logits, labels, ids, name), ce)
    logits[0, 2:5, 1] = 2.0  # sample 1 predicts its tokens better
    per = torch.nn.functional.cross_entropy(
        logits[0, :5], torch.tensor([0, 0, 1, 1, 1]), reduction="none"
    )
    l0, l1 = float(per[0]), float(per[2])
    assert float(causal_lm_loss(logits, labels, ids, "token")) == pytest.approx((l0 + 3 * l1) / 4)
    assert float(causal_lm_loss(logits, labels, ids, "sample")) == pytest.approx((l0 + l1) / 2)
    w0, w1 = 1.0, 3 * 3**-0.5
    assert float(causal_lm_loss(logits, labels, ids, "square")) == pytest.approx(
        (w0 * l0 + w1 * l1) / (w0 + w1)
    )


def _padding(batches, lengths):
    pad = total = 0
    for b in batches:
        longest = max(lengths[i] for i in b)
        pad += sum(longest - lengths[i] for i in b)
        total += longest * len(b)
    return pad / total


def test_length_grouping_cuts_padding_and_keeps_each_record_once():
    gen = torch.Generator().manual_seed(0)
    n = 2048
    lengths = torch.randint(20, 600, (n,), generator=gen).tolist()
    modal = [int(i % 3 != 0) for i in range(n)]
    kw = dict(seed=1, micro_batch=8, accumulate=2, rank=0, world=1)
    plain = GlobalBatchSampler([n], None, **kw)
    grouped = GlobalBatchSampler(
        [n], None, **kw, lengths=lengths, modalities=modal, group_by_length=True
    )
    a, b = list(plain), list(grouped)
    assert sorted(a) == sorted(b) == list(range(n))
    pa = _padding([a[i : i + 8] for i in range(0, n, 8)], lengths)
    pb = _padding([b[i : i + 8] for i in range(0, n, 8)], lengths)
    assert pb < pa / 5, (pa, pb)
    mixed = sum(len({modal[i] for i in b[k : k + 16]}) > 1 for k in range(0, n, 16))
    windows = -(-n // (16 * 32))
    assert mixed <= windows  # only a window's leftover batch may mix modalities
    assert list(grouped) == b  # deterministic


def test_token_budget_batches_fill_by_tokens_and_split_over_ranks():
    n = 500
    lengths = [(i * 37) % 400 + 10 for i in range(n)]
    per_rank = []
    for rank in range(2):
        base = GlobalBatchSampler(
            [n], None, seed=3, micro_batch=4, accumulate=2, rank=rank, world=2
        )
        per_rank.append(list(TokenBudgetBatchSampler(base, lengths, max_tokens=1000)))
    assert len(per_rank[0]) == len(per_rank[1])
    seen = [i for rank in per_rank for b in rank for i in b]
    assert len(seen) == len(set(seen))  # no record twice across ranks
    for b in per_rank[0]:
        assert sum(lengths[i] for i in b) <= 1000 or len(b) == 1
    sizes = {len(b) for b in per_rank[0]}
    assert len(sizes) > 1  # the sample count varies, the tokens do not


def test_token_budget_resumes_mid_epoch():
    lengths = [(i * 53) % 300 + 5 for i in range(300)]
    base = GlobalBatchSampler([300], None, seed=5, micro_batch=4, accumulate=2)
    full = list(TokenBudgetBatchSampler(base, lengths, 700))
    again = TokenBudgetBatchSampler(
        GlobalBatchSampler([300], None, seed=5, micro_batch=4, accumulate=2), lengths, 700
    )
    again.resume_at(0, 6)
    assert list(again) == full[6:]


def test_a_packed_token_budget_run_trains_and_reports_padding(tmp_path):
    import mmfw
    from mmfw.training.run import train
    from tests.conftest import SMALL_TASK

    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            "data.packing=true",
            "data.group_by_length=true",
            "data.max_tokens_per_batch=2000",
            "data.max_images_per_row=3",
            "data.loss_reduction=square",
            "data.num_workers=0",
            "logger=csv",
            "trainer.max_steps=3",
            "evaluate.at_end=false",
            "trainer.enable_progress_bar=false",
        ]  # fmt: skip
    )
    metrics = train(cfg, tmp_path / "run")
    assert metrics["step"] == 3
    assert 0 <= metrics["data/padding_fraction"] < 0.5
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_segment_attention_equals_transformers_block_diagonal_mask(packed_and_padded):
    """Packed SDPA training batches attend sample by sample; loss, logits and gradients are
    those of transformers' dense block-diagonal mask."""
    model, _, packed = packed_and_padded
    keys = ("input_ids", "attention_mask", "labels", "images", "layouts", "position_ids")
    keys += ("sample_ids",)
    runs = {}
    for segments in (True, False):
        model.segment_attention = segments
        model.zero_grad(set_to_none=True)
        out = model(**{k: packed[k] for k in keys}, loss_reduction="sample")
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        runs[segments] = (out.loss.detach(), out.logits.detach(), grads)
    model.segment_attention = True
    model.zero_grad(set_to_none=True)
    with torch.no_grad():  # without sample_ids a sample starts where the positions restart
        derived = model(**{k: packed[k] for k in keys[:-1]}, loss_reduction="sample").loss
    torch.testing.assert_close(derived, runs[True][0], atol=1e-6, rtol=0)
    assert model.llm.config._attn_implementation == "mmfw_cp_sdpa"
    (la, ga, da), (lb, gb, db) = runs[True], runs[False]
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=0)
    torch.testing.assert_close(ga, gb, atol=1e-4, rtol=0)
    assert set(da) == set(db) and len(da) > 10
    for name in da:
        torch.testing.assert_close(da[name], db[name], atol=1e-5, rtol=1e-4, msg=name)
