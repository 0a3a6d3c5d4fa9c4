"""mmfw-plan's activation memory: the formula against what autograd keeps, and its split."""

from __future__ import annotations

import torch
from hydra.utils import instantiate

import mmfw
from mmfw.build import build_model
from mmfw.plan import plan
from mmfw.training.activations import activation_memory


def test_the_formula_is_within_a_quarter_of_what_autograd_keeps():
    cfg = mmfw.compose(["experiment=tiny_llava", "stage=full"])
    torch.manual_seed(0)
    model = build_model(cfg, instantiate(cfg.resolution), 200, 5)
    instantiate(cfg.stage).freeze(model)
    model.train()
    rows, length = 2, 512
    embeds = torch.randn(rows, length, model.hidden_size, requires_grad=True)
    kept: dict = {}

    def pack(t):
        storage = t.untyped_storage()
        kept[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.llm(inputs_embeds=embeds, labels=torch.randint(0, 200, (rows, length)))
    est = activation_memory(
        model,
        micro_batch=rows,
        tokens_per_row=length,
        views=[],
        precision="32-true",
        checkpointed=set(),
    )
    assert 0.75 < est["llm"] / sum(kept.values()) < 1.25
    ckpt = activation_memory(
        model,
        micro_batch=rows,
        tokens_per_row=length,
        views=[],
        precision="32-true",
        checkpointed={"llm"},
    )
    assert ckpt["llm"] < est["llm"]


def test_plan_divides_the_llm_activations_over_the_context_parallel_ranks():
    common = [
        "experiment=llava_next_7b",
        "plan.image_sizes=[[1920,1080],[336,336]]",
        "trainer=ddp",
        "trainer.devices=8",
        "stage=full",  # the encoder trains: its activations count, on every rank
    ]
    one = plan(mmfw.compose([*common], config_name="plan"))["memory"]
    four = plan(mmfw.compose([*common, "trainer.context_parallel=4"], config_name="plan"))["memory"]
    worst = max(one["activations"]["by_image_size"], key=lambda r: r["per_device"])
    assert worst["size"] == [1920, 1080] and worst["encoder"] > 0
    assert one["per_device"]["activations"] == worst["llm"] + worst["encoder"]
    split = four["activations"]["by_image_size"][0]
    assert four["per_device"]["activations"] == split["llm"] // 4 + split["encoder"]
    assert four["activations"]["without_context_parallel"] == one["per_device"]["activations"]
    assert four["per_device"]["total_with_activations"] == (
        four["per_device"]["total"] + four["per_device"]["activations"]
    )
