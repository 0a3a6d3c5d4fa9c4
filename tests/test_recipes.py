"""The seed recipes: full-size plans with published counts; ablations as overrides."""

from __future__ import annotations

import resource

import pytest

import mmfw
from mmfw.plan import plan

# (recipe, published total, tolerance): the papers' / model cards' sizes.
PUBLISHED = [
    ("llava15_7b", 7.06e9, 0.01e9),
    ("llava15_13b", 13.35e9, 0.01e9),
    ("llava_next_7b", 7.06e9, 0.01e9),
    ("otterhd_8b", 9.41e9, 0.01e9),  # Fuyu-8B: 9.41B
    ("mplug_owl3_7b", 8.06e9, 0.02e9),  # 16.1 GB of bf16 weights
    ("ixc2_4khd_7b", 8.60e9, 0.02e9),  # 17.2 GB of bf16 weights
    ("mm15_3b", 3.74e9, 0.01e9),  # public-part stand-in (no published number)
]


def plan_of(*overrides: str) -> dict:
    return plan(mmfw.compose(list(overrides), config_name="plan"))


@pytest.mark.parametrize(("recipe", "total", "tol"), PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_full_size_recipe_plans_on_meta_with_the_published_size(recipe, total, tol):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = plan_of(f"experiment={recipe}", "plan.image_sizes=[[1920,1080]]")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert abs(result["params"]["total"] - total) <= tol, result["params"]["total"]
    assert grown_mb < 1500  # no weights were allocated (a 7B model is 13+ GB)
    assert result["image_tokens"][0]["tokens"] > 0


def test_exact_component_counts():
    llava = plan_of("experiment=llava15_7b")["params"]
    assert llava["modules"]["connector"]["total"] == 20_979_712  # mlp2x_gelu 1024 → 4096
    assert llava["total"] == 7_062_902_784
    otter = plan_of("experiment=otterhd_8b")["params"]["modules"]
    assert otter["encoder"]["total"] == 11_063_296  # Linear(30·30·3 → 4096)
    owl = plan_of("experiment=mplug_owl3_7b")["params"]["modules"]
    assert owl["fusion"]["total"] == 4 * (
        3584 * 1024 + 1024 + 128 * 128 + 128
    )  # v_kv_proj + gate, 4 layers
    ixc = plan_of("experiment=ixc2_4khd_7b")
    assert ixc["params"]["modules"]["llm"]["trainable"] == 524_812_288  # only the Partial LoRA


def test_connector_ablation_at_equal_token_budget():
    sizes = "plan.image_sizes=[[1000,600],[300,900]]"
    counts = {
        conn: [
            r["tokens"]
            for r in plan_of("experiment=ixc2_4khd_7b", f"connector={conn}", sizes)["image_tokens"]
        ]
        for conn in ("token_merge", "resampler", "c_abstractor")
    }
    assert counts["token_merge"] == counts["resampler"] == counts["c_abstractor"]


def test_ixc_switches_and_fusion_ablation():
    base = plan_of("experiment=ixc2_4khd_7b", "plan.image_sizes=[[1500,900]]")["image_tokens"][0]
    rows = base["grid"][0]
    no_nl = plan_of(
        "experiment=ixc2_4khd_7b", "resolution.newline=false", "plan.image_sizes=[[1500,900]]"
    )
    no_glb = plan_of(
        "experiment=ixc2_4khd_7b", "resolution.global_view=false", "plan.image_sizes=[[1500,900]]"
    )
    assert base["tokens"] - no_nl["image_tokens"][0]["tokens"] == 12 * (rows + 1)
    assert base["tokens"] - no_glb["image_tokens"][0]["tokens"] == 144 + 12 + 1
    hyper = plan_of(
        "experiment=llava15_7b", "fusion=hyper_attention", "plan.image_sizes=[[336,336]]"
    )
    assert hyper["image_tokens"][0]["tokens"] == 1  # one placeholder per image
    assert hyper["params"]["modules"]["fusion"]["total"] == 4 * (
        4096 * 2 * 32 * 128 + 2 * 32 * 128 + 128 * 128 + 128
    )
