"""data.fixed_rows / data.fixed_views: every training step has the same shapes, and the loss
and gradients are those of the variable-shape batch."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

import mmfw
from mmfw.data.collate import TrainingCollator
from mmfw.data.dataset import ConversationDataset
from tests.conftest import SMALL_TASK
from tests.helpers import tiny_components

KEYS = ("input_ids", "attention_mask", "labels", "images", "layouts", "position_ids", "sample_ids")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    cfg, comp = tiny_components(tmp_path_factory.mktemp("fixed"))
    ds = ConversationDataset(list(instantiate(cfg.data).sources.values()))
    return cfg, comp, ds


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**{k: batch[k] for k in KEYS}).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


def test_fixed_rows_and_views_change_the_shapes_not_the_numbers(parts):
    cfg, comp, ds = parts
    pad, length = comp.tokenizer.pad_token_id, comp.processor.max_length
    model = comp.model.train()
    shapes = set()
    for start in (0, 8):
        items = [ds[i] for i in range(start, start + 8)]
        free = TrainingCollator(comp.processor, pad, packing=True)(items)
        fixed = TrainingCollator(comp.processor, pad, packing=True, fixed_rows=4)(items)
        assert fixed["input_ids"].shape == (4, length) and fixed["over_fixed_rows"] == 0
        assert free["input_ids"].shape[0] < 4 and int(fixed["attention_mask"].sum()) == int(
            free["attention_mask"].sum()
        )
        shapes.add(tuple(fixed["input_ids"].shape))
        loss, grads = _loss_and_grads(model, free)
        model.view_budget = 3  # 8 single-view images: 3 encoder calls of 3 views, 1 blank
        fixed_loss, fixed_grads = _loss_and_grads(model, fixed)
        model.view_budget = None
        torch.testing.assert_close(fixed_loss, loss, atol=1e-5, rtol=0)
        assert set(grads) == set(fixed_grads) and any(n.startswith("encoder") for n in grads)
        for name, grad in grads.items():
            torch.testing.assert_close(fixed_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert len(shapes) == 1
    # more samples than the fixed rows hold: they all train, in a bigger batch
    items = [ds[i] for i in range(32)]
    over = TrainingCollator(comp.processor, pad, packing=True, fixed_rows=1)(items)
    assert over["over_fixed_rows"] == 1 and over["num_samples"] == 32


def test_fixed_rows_need_packing():
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK, "data.fixed_rows=2"])
    with pytest.raises(Exception, match=r"data.fixed_rows=2 needs data.packing=true"):
        instantiate(cfg.data)
