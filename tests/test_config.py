"""Every yaml in conf/ composes and instantiates; typos fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

import mmfw
from mmfw.config import CONF_DIR
from tests.conftest import SMALL_TASK

CONF = Path(CONF_DIR)
ENTRY = {"train.yaml", "eval.yaml", "plan.yaml"}
# hydra/ (launchers, sweepers) compose with the CLI (tests/cli/test_launchers.py); pipeline/
# entries are lists of overrides (below).
YAMLS = sorted(
    p
    for p in CONF.rglob("*.yaml")
    if p.name not in ENTRY and p.relative_to(CONF).parts[0] not in ("hydra", "pipeline")
)
PIPELINES = sorted(p.stem for p in (CONF / "pipeline").glob("*.yaml"))


def _group_and_name(path: Path) -> tuple[str, str]:
    rel = path.relative_to(CONF).with_suffix("")
    return str(rel.parent), rel.name


def test_every_conf_folder_is_globbed():
    groups = {_group_and_name(p)[0] for p in YAMLS}
    for needed in (
        "encoder",
        "connector",
        "fusion",
        "llm",
        "resolution",
        "data",
        "stage",
        "optim",
        "trainer",
        "logger",
        "benchmark",
        "experiment",
    ):
        assert needed in groups


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """A real LLaVA JSON file and the generated MC TSV, for the choices that need a path."""
    from mmfw.data.synthetic.source import ensure_generated

    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK])
    root = ensure_generated(
        instantiate(cfg.synthetic), OmegaConf.to_container(cfg.paths, resolve=True)["cache"]
    )
    return {"__DATA__": str(root / "train.json"), "__TSV__": str(root / "test_mc.tsv")}


INSTANTIATED = (
    "resolution",
    "template",
    "synthetic",
    "data",
    "stage",
    "optim",
    "tokenizer",
    "checkpoint",
)


def compose_choice(group: str, name: str, small_files: dict):
    choice = {"benchmark": "benchmark@benchmarks.synthetic_magnifier",
              "encoder/pretrained": "+encoder/pretrained"}.get(group, group)  # fmt: skip
    # A real-size choice that only fits real-size parts is composed inside its recipe.
    recipe = {"fusion/hyper_attention": "mplug_owl3_7b"}.get(f"{group}/{name}", "tiny_llava")
    base = [] if group == "experiment" else [f"experiment={recipe}"]
    overrides = [*base, *SMALL_TASK, f"{choice}={name}"]
    cfg = mmfw.compose(overrides)
    if group == "benchmark" and OmegaConf.is_missing(cfg.benchmarks.synthetic_magnifier, "path"):
        overrides.append(f"benchmarks.synthetic_magnifier.path={small_files['__TSV__']}")
        cfg = mmfw.compose(overrides)
    main = cfg.data.sources.get("main")
    if main is not None and OmegaConf.is_missing(main, "path"):  # a user's dataset file
        cfg = mmfw.compose([*overrides, f"data.sources.main.path={small_files['__DATA__']}"])
    return cfg


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(CONF)))
def test_yaml_composes_and_instantiates(path: Path, small_files):
    """Every node of the composed config instantiates; the model is built with its live
    wiring on the meta device (real-size choices build in milliseconds, no memory)."""
    from mmfw.build import build_model
    from mmfw.plan import llm_knows_vocab

    cfg = compose_choice(*_group_and_name(path), small_files)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    for key in INSTANTIATED:
        assert instantiate(cfg[key]) is not None, key
    for name, node in cfg.logger.items():
        assert callable(instantiate(node)), name
    for name, node in (cfg.get("benchmarks") or {}).items():
        assert instantiate(node) is not None, name
    assert instantiate(cfg.trainer).max_steps == cfg.trainer.max_steps
    instantiate(cfg.trainer).batch_plan(cfg.data.batch_size, cfg.data.global_batch_size)
    knows_vocab = llm_knows_vocab(cfg)
    with torch.device("meta"):
        model = build_model(
            cfg, instantiate(cfg.resolution), None if knows_vocab else 1000, image_token_id=0
        )
    assert next(model.llm.parameters()).device.type == "meta"
    assert sum(p.numel() for p in model.parameters()) > 0


def test_typo_in_override_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        mmfw.compose(["experiment=tiny_llava", "trainer.max_stepz=5"])
    assert "max_stepz" in str(err.value)


def test_unknown_choice_names_the_group():
    with pytest.raises(ConfigCompositionException) as err:
        mmfw.compose(["connector=mlp3x_gelu"])
    assert "connector" in str(err.value) and "mlp3x_gelu" in str(err.value)


def test_typo_in_yaml_key_fails_at_instantiation():
    cfg = mmfw.compose(["experiment=tiny_llava", "+connector.dpeth=3"])
    with pytest.raises(TypeError) as err:
        instantiate(cfg.connector)(in_dim=4, out_dim=4)
    assert "dpeth" in str(err.value)
    cfg = mmfw.compose(["experiment=tiny_llava", "+stage.learning_rate=3"])
    with pytest.raises(InstantiationException) as err:
        instantiate(cfg.stage)
    assert "learning_rate" in str(err.value) and "stage" in str(err.value)


def test_compose_matches_cli_defaults():
    cfg = mmfw.compose(["experiment=tiny_llava", "connector=linear"])
    assert cfg.name == "tiny_llava"
    assert cfg.connector._target_.endswith("LinearConnector")
    assert OmegaConf.is_struct(cfg)


@pytest.mark.parametrize("name", PIPELINES)
@pytest.mark.parametrize("recipe", ["tiny_llava", "llava15_7b"])
def test_every_pipeline_stage_composes_and_instantiates(name, recipe, small_files):
    """Each stage's overrides on top of a recipe give a config whose stage, optimiser and
    trainer instantiate (as the stage's own mmfw-train process will)."""
    from mmfw.training.pipeline import stage_overrides

    base = [f"experiment={recipe}", *SMALL_TASK]
    if recipe == "llava15_7b":
        base.append(f"data.sources.main.path={small_files['__DATA__']}")
    stages = stage_overrides(mmfw.compose([*base, f"+pipeline={name}"]))
    assert len(stages) >= 2
    for overrides in stages.values():
        cfg = mmfw.compose([*overrides, *base])
        stage = instantiate(cfg.stage)
        assert instantiate(cfg.optim) is not None
        spec = instantiate(cfg.trainer)
        assert spec.batch_plan(cfg.data.batch_size, cfg.data.global_batch_size).global_batch > 0
        assert stage.lr > 0
