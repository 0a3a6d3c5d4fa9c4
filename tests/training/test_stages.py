"""Stages as data: freezing and learning-rate groups."""

from __future__ import annotations

import pytest
from torch import nn

from mmfw.training.stages import Stage


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(2, 2)
        self.connector = nn.Linear(2, 2)
        self.fusion = nn.Identity()
        self.llm = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
        self.image_newline = nn.Parameter(nn.init.zeros_(nn.Linear(1, 2).bias))


def test_align_trains_only_the_connector_and_newline():
    model = Toy()
    stage = Stage(
        trainable={"encoder": False, "connector": True, "fusion": True, "llm": False}, lr=1e-3
    )
    stage.freeze(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"connector.weight", "connector.bias", "image_newline"}
    groups = stage.param_groups(model, weight_decay=0.1)
    assert {g["name"]: g["weight_decay"] for g in groups} == {
        "connector": 0.1,
        "connector_no_decay": 0.0,
    }


def test_lr_scale_per_module():
    model = Toy()
    stage = Stage(
        trainable=dict.fromkeys(("encoder", "connector", "fusion", "llm"), True),
        lr=1e-4,
        lr_scale={"llm": 0.2},
    )
    stage.freeze(model)
    lrs = {g["name"]: g["lr"] for g in stage.param_groups(model)}
    assert lrs["llm"] == pytest.approx(2e-5) and lrs["encoder"] == pytest.approx(1e-4)


def test_bad_stage_keys_are_named():
    with pytest.raises(ValueError, match="'vision'"):
        Stage(trainable={"vision": True}, lr=1.0)
    with pytest.raises(ValueError, match="lacks"):
        Stage(trainable={"encoder": True}, lr=1.0)
    frozen = Stage(
        trainable=dict.fromkeys(("encoder", "connector", "fusion", "llm"), False), lr=1.0
    )
    model = Toy()
    frozen.freeze(model)
    with pytest.raises(ValueError, match="nothing would train"):
        frozen.param_groups(model)
