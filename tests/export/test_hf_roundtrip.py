"""Export → ``model.init_from_hf`` gives back the same model, for every exportable variant;
what has no transformers counterpart is refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import mmfw
from mmfw.build import build_components, build_tokenizer
from mmfw.data.templates.base import Turn
from mmfw.errors import ConfigProblems
from mmfw.export.hf_support import NotExportable, describe
from mmfw.export.run_export import export_run
from mmfw.runs import load_run
from mmfw.training.init_from_hf import load_hf_weights, with_hf_architecture
from tests.conftest import SMALL_TASK, run_cli
from tests.export.conftest import handmade_run
from tests.export.test_hf_parity import load_hf
from tests.helpers import tiny_components

SIGLIP = ("encoder=tiny_siglip", "resolution.fill=[127,127,127]")  # HF pads with mean x 255
VARIANTS = {
    "llava": ("experiment=tiny_llava",),
    "linear_connector": ("experiment=tiny_llava", "connector=linear"),
    "siglip_full": ("experiment=tiny_llava", *SIGLIP),
    "penultimate_tied": (
        "experiment=tiny_llava",
        "encoder.select_layer=-2",
        "llm.config.tie_word_embeddings=true",
    ),
    "resize": ("experiment=tiny_llava", "resolution=fixed_64"),
    "lora": ("experiment=tiny_llava", "stage=lora", "stage.adapters.lora.r=4"),
    "llava_next": ("experiment=tiny_llava_next_7b",),
    "llava_next_siglip": ("experiment=tiny_llava_next_7b", "encoder=tiny_siglip"),
}


def logits(run_model, processor, image: Image.Image) -> torch.Tensor:
    sample = processor.prompt_sample([Turn("human", "<image>\nWhat colour is it?")], [image])
    ids = torch.tensor([sample.input_ids])
    with torch.no_grad():
        return run_model(
            ids, torch.ones_like(ids), images=sample.images, layouts=sample.layouts
        ).logits


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_export_then_init_from_hf_is_the_same_model(variant, tmp_path):
    overrides = VARIANTS[variant]
    run_dir = handmade_run(tmp_path / "run", *overrides, *SMALL_TASK)
    fmt = "hf_llava_next" if "next" in variant else "hf_llava"
    out = tmp_path / "export"
    export_run(run_dir, fmt, out)
    run = load_run(run_dir)
    image = Image.new("RGB", (53, 37), (200, 40, 30))
    ours = logits(run.model, run.processor, image)

    # transformers runs the export to within 1e-4.
    hf, processor = load_hf(out)
    prompt = "".join(
        s.text
        for s in run.processor.template.prompt([Turn("human", "<image>\nWhat colour is it?")])
    )
    with torch.no_grad():
        theirs = hf(**processor(images=image, text=prompt, return_tensors="pt")).logits
    assert (theirs - ours).abs().max().item() < 1e-4
    # Untrained weights rarely say EOS: 12 greedy tokens of two left-padded prompts agree.
    from mmfw.eval.generation import generate

    images = [image, Image.new("RGB", (90, 30), (10, 200, 90))]
    prompts = [([Turn("human", "<image>\nWhat colour is it?")], [img]) for img in images]
    mine = [g.output for g in generate(run.model, run.processor, prompts, max_new_tokens=12)]
    processor.tokenizer.padding_side = "left"
    enc = processor(images=images, text=[prompt, prompt], return_tensors="pt", padding=True)
    with torch.no_grad():
        new = hf.generate(**enc, max_new_tokens=12, do_sample=False)
    assert (
        processor.batch_decode(new[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        == mine
    )
    assert all(len(text) > 0 for text in mine)

    # init_from_hf rebuilds it: same logits (LoRA comes back merged, as a full model).
    back = [o for o in overrides if not o.startswith("stage")] + [
        "stage=full",
        f"model.init_from_hf={out}",
    ]
    cfg = with_hf_architecture(mmfw.compose([*back, *SMALL_TASK]))
    tokenizer = build_tokenizer(cfg, tmp_path / "tok", lambda: iter(()))
    parts = build_components(cfg, tokenizer)
    info = load_hf_weights(parts.model, str(out))
    assert info["tensors"] == len(parts.model.state_dict())
    again = logits(parts.model.eval(), parts.processor, image)
    assert torch.allclose(again, ours, atol=1e-5, rtol=0)


def test_init_from_hf_through_mmfw_train(llava_run, tmp_path):
    """A training run starts from an export: the log names the source, the run's config holds
    the checkpoint's architecture, and evaluation before any learning reproduces the source."""
    out = tmp_path / "hf"
    export_run(llava_run, "hf_llava", out)
    run_dir = tmp_path / "run"
    proc = run_cli(
        "mmfw-train", "experiment=tiny_llava", f"model.init_from_hf={out}", "trainer.max_steps=1",
        "stage.lr=1e-12", "logger=csv", f"hydra.run.dir={run_dir}", *SMALL_TASK,
    )  # fmt: skip
    assert f"model.init_from_hf loaded 64 tensors from {out}" in proc.stdout + proc.stderr
    groups = json.loads((run_dir / "optimizer_groups.json").read_text())
    assert groups["init_from"]["kind"] == "init_from_hf"
    source = json.loads((llava_run / "metrics.json").read_text())
    started = json.loads((run_dir / "metrics.json").read_text())
    assert started["synthetic_magnifier/accuracy"] == source["synthetic_magnifier/accuracy"]


def test_init_from_hf_contradictions_are_named(llava_run, tmp_path):
    out = tmp_path / "hf"
    export_run(llava_run, "hf_llava", out)
    cfg = mmfw.compose(["experiment=tiny_llava", "connector=linear", "encoder.select_layer=-2",
                        "resolution=tiny_anyres", f"model.init_from_hf={out}", *SMALL_TASK])  # fmt: skip
    with pytest.raises(ConfigProblems) as e:
        with_hf_architecture(cfg)
    text = str(e.value)
    assert (
        "encoder.select_layer=-1" in text
        and "connector=mlp2x_gelu" in text
        and "FixedResolution" not in text
    )
    assert "fixed/pad strategy" in text
    # The preflight says the same before any run directory exists.
    from mmfw.validate import validate_train

    problems = " ".join(validate_train(cfg))
    assert "encoder.select_layer=-1" in problems and "connector=mlp2x_gelu" in problems


def test_init_from_hf_lists_unmapped_keys(llava_run, tmp_path):
    """A recipe whose model has weights the checkpoint lacks (a newline embedding) fails
    with the keys named, before training."""
    out = tmp_path / "hf"
    export_run(llava_run, "hf_llava", out)
    cfg, parts = tiny_components(tmp_path, "resolution=tiny_hd9")
    with pytest.raises(ValueError, match=r"image_newline|image_separator"):
        load_hf_weights(parts.model, str(out))


@pytest.mark.parametrize(
    ("overrides", "fmt", "named"),
    [
        (("connector=tiny_resampler",), "hf_llava", "connector"),
        (("fusion=tiny_hyper_attention",), "hf_llava", "fusion"),
        (("encoder=tiny_patch_linear", "resolution=tiny_native"), "hf_llava", "encoder"),
        (("resolution=tiny_hd9",), "hf_llava", "resolution"),
        (("resolution.fill=[0,0,0]",), "hf_llava", "resolution.fill"),
        (("resolution=tiny_anyres", "resolution.newline=false"), "hf_llava_next", "newline"),
        ((), "hf_llava_next", "format=hf_llava"),
        (("stage=partial_lora",), "hf_llava", "Partial LoRA"),
        (("model.center_image_tokens=true",), "hf_llava", "model.center_image_tokens"),
    ],
)
def test_parts_without_a_transformers_counterpart_are_refused(overrides, fmt, named, tmp_path):
    cfg, parts = tiny_components(tmp_path, *overrides)
    with pytest.raises(NotExportable) as e:
        describe(cfg, parts.model, fmt)
    assert named in str(e.value) and "format=mmfw" in str(e.value)


def test_mmfw_format_sharded_evaluates_like_the_run(llava_run, tmp_path):
    """format=mmfw: safetensors (sharded here) + config + tokenizer; mmfw-eval on it writes the
    run's predictions."""
    out = tmp_path / "mmfw"
    export_run(llava_run, "mmfw", out, max_shard_size="100KB")
    assert (out / "model.safetensors.index.json").exists()
    assert len(list(out.glob("model-*.safetensors"))) > 1
    run_cli("mmfw-eval", f"run={out}")
    mine = (out / "eval" / "synthetic_magnifier" / "predictions.jsonl").read_text()
    source = (llava_run / "eval" / "synthetic_magnifier" / "predictions.jsonl").read_text()
    assert [json.loads(x)["output"] for x in mine.splitlines()] == [
        json.loads(x)["output"] for x in source.splitlines()
    ]


def test_export_cli_bad_input(llava_run, tmp_path):
    """Every problem at once, before anything is loaded; overwrite never deletes a folder
    mmfw did not write."""
    from mmfw.cli.export import parse, validate

    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    values, problems = parse(
        [f"run={llava_run}", "format=hf_llava", f"out={out}", "overwrite=true"]
    )
    with pytest.raises(ConfigProblems, match="not an mmfw export"):
        validate(values, problems)
    with pytest.raises(ValueError, match="not an mmfw export"):
        export_run(llava_run, "hf_llava", out, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"
    proc = run_cli(
        "mmfw-export", f"run={tmp_path}", "format=onnx", f"out={out}", "bogus=1", check=False
    )
    assert proc.returncode == 2
    for fragment in (
        "4 problems",
        "bogus=1: not a key=value",
        "not an mmfw run directory",
        "format=onnx: use one of hf_llava, hf_llava_next, mmfw",
        "exists and is not empty",
    ):
        assert fragment in proc.stderr, proc.stderr


def test_hf_export_shards_and_reloads(llava_run, tmp_path):
    out = tmp_path / "hf"
    export_run(llava_run, "hf_llava", out, max_shard_size="100KB")
    assert (out / "model.safetensors.index.json").exists()
    hf, _ = load_hf(out)
    assert isinstance(hf, torch.nn.Module)


LEGACY = (  # transformers 4.x / llava-hf release names → the in-memory names of transformers 5
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.vision_tower.", "vision_tower.vision_model."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)


def test_init_from_a_llava_hf_release_layout(llava_run, tmp_path):
    """llava-hf's published checkpoints use transformers 4's names
    (``language_model.model.*``, ``vision_tower.vision_model.*``); init_from_hf reads them."""
    from safetensors.torch import load_file, save_file

    out = tmp_path / "release"
    export_run(llava_run, "hf_llava", out)
    hf, _ = load_hf(out)
    renamed = {}
    for key, value in hf.state_dict().items():
        for new, old in LEGACY:
            if key.startswith(new):
                key = old + key[len(new) :]
                break
        renamed[key] = value.clone()
    (out / "model.safetensors").unlink()
    save_file(renamed, str(out / "model.safetensors"), metadata={"format": "pt"})
    assert any(
        k.startswith("vision_tower.vision_model.")
        for k in load_file(str(out / "model.safetensors"))
    )
    cfg = with_hf_architecture(
        mmfw.compose(["experiment=tiny_llava", f"model.init_from_hf={out}", *SMALL_TASK])
    )
    parts = build_components(cfg, build_tokenizer(cfg, tmp_path / "tok", lambda: iter(())))
    load_hf_weights(parts.model, str(out))
    run = load_run(llava_run)
    image = Image.new("RGB", (40, 64), (20, 40, 230))
    assert torch.equal(
        logits(parts.model.eval(), parts.processor, image), logits(run.model, run.processor, image)
    )


def test_a_padded_vocabulary_is_kept():
    """llava-hf pads 32002 tokenizer rows to 32064 embedding rows: the LLM keeps the larger."""
    from mmfw.models.llm import build_causal_lm

    tiny = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
    }
    assert build_causal_lm(vocab_size=10, config={**tiny, "vocab_size": 16}).config.vocab_size == 16
    assert build_causal_lm(vocab_size=20, config={**tiny, "vocab_size": 16}).config.vocab_size == 20


def test_plan_uses_the_checkpoint_architecture(llava_run, tmp_path):
    """mmfw-plan with model.init_from_hf counts the checkpoint's parameters, not the recipe's."""
    from mmfw.plan import plan

    out = tmp_path / "hf"
    export_run(llava_run, "hf_llava", out)
    bigger = ["llm.config.hidden_size=128", "llm.config.intermediate_size=256"]
    cfg = mmfw.compose(
        ["experiment=tiny_llava", *bigger, f"model.init_from_hf={out}", *SMALL_TASK],
        config_name="plan",
    )
    params = plan(cfg)["params"]["total"]
    assert params == sum(p.numel() for p in load_run(llava_run).model.parameters())


def test_llava15_recipe_plans_a_llava_hf_release_config(tmp_path):
    """llava15_7b + model.init_from_hf with llava-1.5-7b-hf's config (written here: no network)
    passes every contradiction check and plans the release's 7,063,427,072 parameters
    (its 32,064-row vocabulary kept), on the meta device."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    from mmfw.plan import plan

    vision = CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=336, patch_size=14, projection_dim=768,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32,
    )  # fmt: skip
    LlavaConfig(
        vision_config=vision.to_dict(), text_config=text.to_dict(), image_token_index=32000,
        vision_feature_layer=-2, projector_hidden_act="gelu",
    ).save_pretrained(tmp_path)  # fmt: skip
    cfg = mmfw.compose(
        ["experiment=llava15_7b", f"model.init_from_hf={tmp_path}"], config_name="plan"
    )
    assert plan(cfg)["params"]["total"] == 7_063_427_072


def test_two_init_sources_are_refused_before_anything_runs(tmp_path):
    """model.init_from_hf with stage.init_from: mmfw-train's preflight names the conflict."""
    from mmfw.validate import validate_train

    cfg = mmfw.compose(
        ["experiment=tiny_llava", "model.init_from_hf=org/name", f"stage.init_from={tmp_path}"]
    )
    problems = validate_train(cfg, check_devices=False)
    assert any("model.init_from_hf" in p and "stage.init_from is set too" in p for p in problems)
