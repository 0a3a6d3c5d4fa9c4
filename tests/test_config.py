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
YAMLS = sorted(p for p in CONF.rglob("*.yaml") if p.name not in ENTRY)
# Choices that need a value the repository cannot ship (a user's file).
EXTRA = {
    "data/llava_json": ["data.sources.main.path=__DATA__"],
    "benchmark/mc_tsv": ["benchmarks.synthetic_magnifier.path=__TSV__"],
}


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


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(CONF)))
def test_yaml_composes_and_instantiates(path: Path, small_files):
    group, name = _group_and_name(path)
    key = f"{group}/{name}"
    choice = "benchmark@benchmarks.synthetic_magnifier" if group == "benchmark" else group
    extra = [
        e.replace("__DATA__", small_files["__DATA__"]).replace("__TSV__", small_files["__TSV__"])
        for e in EXTRA.get(key, [])
    ]
    base = [] if group == "experiment" else ["experiment=tiny_llava"]
    cfg = mmfw.compose([*base, *SMALL_TASK, f"{choice}={name}", *extra])
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if group == "benchmark":
        nodes = [("benchmark", cfg.benchmarks.synthetic_magnifier)]
    elif group == "experiment":
        groups = ("encoder", "connector", "llm", "resolution", "template", "data", "stage", "optim")
        nodes = [(g, cfg[g]) for g in groups]
    elif group == "logger":
        nodes = [("logger", n) for n in cfg.logger.values()]
    else:
        nodes = [(group, cfg[group])]
    for kind, node in nodes:
        # Weights go to the meta device: real-size choices build in milliseconds, no memory.
        with torch.device("meta"):
            obj = instantiate(node)
            if kind == "llm":
                obj = obj(vocab_size=1000)
                assert next(obj.parameters()).device.type == "meta"
            if kind == "connector":
                obj = obj(in_dim=8, out_dim=16)
        if group == "logger":
            assert callable(obj)
        assert obj is not None


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
