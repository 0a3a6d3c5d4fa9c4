"""mmfw-plan: the JSON contract, real-size plans on the meta device, data token statistics."""

from __future__ import annotations

import json
import resource
import time

from hydra.utils import instantiate

import mmfw
from mmfw.data.formats.llava_json import parse_record
from mmfw.plan import plan
from mmfw.resolution.dynamic_partition import DynamicPartition
from tests.conftest import SMALL_TASK, run_cli


def test_cli_prints_the_json_contract():
    out = run_cli(
        "mmfw-plan",
        "experiment=tiny_llava",
        "resolution=hd9",
        "plan.image_sizes=[[1920,1080]]",
        "plan.format=json",
    )
    result = json.loads(out.stdout)
    assert set(result) == {"params", "image_tokens", "warnings", "memory"}
    assert result["memory"]["strategy"] == "single" and result["memory"]["devices"] == 1
    assert set(result["memory"]["per_device"]) >= {"weights", "gradients", "optimizer", "total"}
    params = result["params"]
    assert set(params["modules"]) == {"encoder", "connector", "fusion", "llm"}
    assert params["total"] == sum(m["total"] for m in params["modules"].values()) > 0
    assert all(set(m) == {"total", "trainable"} for m in params["modules"].values())
    (row,) = result["image_tokens"]
    layout = DynamicPartition(crop_size=336, max_crops=9).layout(1920, 1080)
    assert row["size"] == [1920, 1080] and row["grid"] == list(layout.grid) == [2, 3]
    assert row["views"] == 7
    # tiny ViT (patch 8) on 336-px views, MLP connector: 42x42 tokens per view, plus newlines
    assert row["tokens"] == (42 * 42 + 42) + 1 + (84 * 126 + 84)
    assert isinstance(result["warnings"], list)


def test_text_format_is_a_table():
    """The text mmfw-plan prints with plan.format=text (the CLI is run in the JSON test)."""
    from mmfw.plan import render_text

    cfg = mmfw.compose(["experiment=tiny_llava", "plan.image_sizes=[[64,64]]"], config_name="plan")
    text = render_text(plan(cfg))
    assert "trainable" in text and "64x64" in text


def test_llava15_7b_plans_in_seconds_on_meta_with_published_counts():
    cfg = mmfw.compose(
        [
            "encoder=clip_vit_l14_336",
            "llm=vicuna_7b",
            "connector=mlp2x_gelu",
            "resolution=pad_336",
            "stage=align",
            "plan.image_sizes=[[336,336],[800,600]]",
        ],
        config_name="plan",
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = plan(cfg)
    seconds = time.perf_counter() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    modules = result["params"]["modules"]
    assert modules["connector"]["total"] == 20_979_712
    assert 7.05e9 < result["params"]["total"] < 7.07e9
    assert result["params"]["trainable"] == 20_979_712  # stage=align: the projector only
    assert [r["tokens"] for r in result["image_tokens"]] == [576, 576]
    assert seconds < 20 and grown_mb < 1024  # 7B parameters in bf16 would be 13 GB


def test_data_token_statistics_match_the_real_tokenisation(tmp_path):
    from mmfw.build import build_components, build_tokenizer

    cfg = mmfw.compose(
        ["experiment=tiny_llava", *SMALL_TASK, "plan.data_samples=40"], config_name="plan"
    )
    result = plan(cfg)
    data = result["data"]
    assert (
        data["samples"] == 40 and data["image_tokens"]["min"] == data["image_tokens"]["max"] == 64
    )
    # The training pipeline's own lengths over all records bound the sampled distribution.
    datamodule = instantiate(cfg.data)
    parts = build_components(cfg, build_tokenizer(cfg, tmp_path / "tok", datamodule.texts))
    src = datamodule.sources["magnifier"]
    lengths = [
        len(parts.processor.training_sample(parse_record(r), src.image_root).input_ids)
        for r in src.records()
    ]
    assert (
        min(lengths) <= data["total_tokens"]["min"] <= data["total_tokens"]["max"] <= max(lengths)
    )
    assert data["over_max_length"] == 0
