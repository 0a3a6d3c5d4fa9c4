"""Stages as data: freezing and learning-rate groups."""

from __future__ import annotations

import pytest
import torch
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


def test_sub_parts_refine_a_module_and_the_longest_rule_wins():
    model = Toy()
    stage = Stage(
        trainable={
            "encoder": False,
            "connector": False,
            "fusion": False,
            "llm": False,
            "connector.newline": True,
            "llm.1": True,  # the LayerNorm inside the llm Sequential
        },
        lr=1e-3,
    )
    stage.freeze(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"image_newline", "llm.1.weight", "llm.1.bias"}


def test_a_sub_part_that_matches_nothing_is_an_error():
    stage = Stage(
        trainable={
            "encoder": True,
            "connector": True,
            "fusion": True,
            "llm": True,
            "llm.lm_head": False,
        },
        lr=1e-3,
    )
    with pytest.raises(ValueError, match=r"\['llm.lm_head'\] match no parameter"):
        stage.freeze(Toy())


class Deep(nn.Module):
    """An encoder with embeddings, three blocks and a head, like a ViT's parameter names."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.embed = nn.Embedding(4, 2)
        self.encoder.layers = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))
        self.encoder.post = nn.LayerNorm(2)
        self.connector = nn.Linear(2, 2)
        self.fusion = nn.Identity()
        self.llm = nn.Linear(2, 2)


def test_layer_decay_follows_the_block_index():
    model = Deep()
    stage = Stage(
        trainable=dict.fromkeys(("encoder", "connector", "fusion", "llm"), True),
        lr=1.0,
        layer_decay={"encoder": 0.9},
    )
    stage.freeze(model)
    lrs = {}
    for g in stage.param_groups(model, weight_decay=0.1):
        for p in g["params"]:
            name = next(n for n, q in model.named_parameters() if q is p)
            lrs[name] = g["lr"]
    # 3 blocks: embeddings 0.9^4, block i 0.9^(3-i), after the blocks 1.
    assert lrs["encoder.embed.weight"] == pytest.approx(0.9**4)
    assert lrs["encoder.layers.0.weight"] == pytest.approx(0.9**3)
    assert lrs["encoder.layers.2.bias"] == pytest.approx(0.9)
    assert lrs["encoder.post.weight"] == pytest.approx(1.0)
    assert lrs["connector.weight"] == lrs["llm.weight"] == pytest.approx(1.0)


def test_weight_decay_skips_biases_norms_embeddings_and_layout_tokens():
    model = Deep()
    model.image_newline = nn.Parameter(torch.zeros(2))
    stage = Stage(trainable=dict.fromkeys(("encoder", "connector", "fusion", "llm"), True), lr=1.0)
    stage.freeze(model)
    decay = {}
    for g in stage.param_groups(model, weight_decay=0.1):
        for p in g["params"]:
            decay[next(n for n, q in model.named_parameters() if q is p)] = g["weight_decay"]
    assert decay["encoder.layers.0.weight"] == decay["llm.weight"] == 0.1
    for exempt in (
        "encoder.layers.0.bias",
        "encoder.embed.weight",
        "encoder.post.weight",
        "image_newline",
    ):
        assert decay[exempt] == 0.0, exempt


def test_unused_encoder_layers_never_train(tmp_path):
    """Layers after encoder.select_layer get no gradient: every stage keeps them frozen."""
    from tests.helpers import tiny_components

    _, parts = tiny_components(tmp_path, "encoder.select_layer=-2")
    Stage(trainable=dict.fromkeys(("encoder", "connector", "fusion", "llm"), True), lr=1.0).freeze(
        parts.model
    )
    frozen = {n for n, p in parts.model.named_parameters() if not p.requires_grad}
    assert frozen and frozen == parts.model.unused_parameters()
    assert all(".layers.1." in n or "post_layernorm" in n for n in frozen)


def test_stage_validates_its_new_keys():
    full = dict.fromkeys(("encoder", "connector", "fusion", "llm"), True)
    with pytest.raises(ValueError, match="layer_decay.encoder=1.5"):
        Stage(trainable=full, lr=1.0, layer_decay={"encoder": 1.5})
    with pytest.raises(ValueError, match="init_adapters='fold'"):
        Stage(trainable=full, lr=1.0, init_adapters="fold")
    with pytest.raises(ValueError, match="gradient_checkpointing key 'vision'"):
        Stage(trainable=full, lr=1.0, gradient_checkpointing=["vision"])
