"""The preflight composes what Hydra will run: user config folders (``hydra.searchpath`` on
the command line or in a primary config, ``--config-dir`` / ``--config-name``), and names
what Hydra's parser refuses (dash-style options, unbalanced brackets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose as hydra_compose
from hydra.core.hydra_config import HydraConfig

from mmfw.cli.preflight import compose_checked, job_overrides, split_argv, validate_jobs
from mmfw.config import CONF_DIR, _initialized, compose
from mmfw.errors import UserError
from mmfw.training.distributed import composition_args
from tests.conftest import SMALL_TASK

BASE = ["experiment=tiny_llava", *SMALL_TASK]


@pytest.fixture
def user_conf(tmp_path):
    """A user's folder with ``data/my_mix.yaml`` (the synthetic data, micro-batch 8) and a
    primary config that searches a second folder holding ``data/other_mix.yaml``."""
    mine, other = tmp_path / "conf", tmp_path / "other"
    yaml = (Path(CONF_DIR) / "data" / "synthetic_magnifier.yaml").read_text()
    for folder, name in ((mine, "my_mix"), (other, "other_mix")):
        (folder / "data").mkdir(parents=True)
        (folder / "data" / f"{name}.yaml").write_text(
            yaml.replace("batch_size: 32", "batch_size: 8")
        )
    (mine / "my_train.yaml").write_text(
        "defaults:\n  - train\n  - override data: other_mix\n  - _self_\n"
        f"hydra:\n  searchpath: [file://{other}]\nname: mine\n"
    )
    return mine, other


def checked(*argv: str):
    overrides, multirun, _ = split_argv(list(argv))
    validate_jobs(overrides, multirun)
    return compose_checked(job_overrides(overrides, multirun)[0])


def test_hydra_searchpath_on_the_command_line_adds_choices(user_conf):
    mine, _ = user_conf
    cfg = checked(*BASE, f"hydra.searchpath=[file://{mine}]", "data=my_mix")
    assert cfg.data.batch_size == 8
    jobs = job_overrides(split_argv([f"hydra.searchpath=[{mine}]", "seed=0,1", "-m"])[0], True)
    assert [j[0] for j in jobs] == [f"hydra.searchpath=[{mine}]"] * 2


def test_config_dir_and_config_name_compose_the_users_primary_config(user_conf):
    mine, _ = user_conf
    cfg = checked("--config-dir", str(mine), "-cn", "my_train", *SMALL_TASK)
    assert cfg.name == "mine" and cfg.data.batch_size == 8  # other_mix, by its searchpath
    assert checked(f"--config-dir={mine}", *BASE, "data=my_mix").data.batch_size == 8
    with pytest.raises(UserError, match="--config-dir /nope/conf: no such folder"):
        checked("--config-dir", "/nope/conf", *BASE)


def test_a_wrong_choice_lists_the_users_choices_too(user_conf):
    mine, other = user_conf
    with pytest.raises(UserError) as err:
        checked(*BASE, f"hydra.searchpath=[file://{mine},/nope/conf]", "data=my_mixx")
    msg = str(err.value)
    assert msg.startswith("data=my_mixx: no such choice. did you mean data=my_mix?")
    assert "Choices of data: llava_json," in msg
    assert f"in file://{mine}: my_mix" in msg and "in /nope/conf: (no such folder)" in msg
    with pytest.raises(UserError, match=f"in file://{other}: other_mix"):
        checked("--config-dir", str(mine), "--config-name", "my_train", "data=other_mixx")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--experiment", "tiny_llava"], "--experiment tiny_llava: not an option; overrides "
         "are key=value with no dashes: experiment=tiny_llava"),
        (["--trainer.max_steps=5"], "no dashes: trainer.max_steps=5"),
        (["--debug"], "--debug: not an option"),
        (["--run=/x"], "--run=/x: not an option; overrides are key=value with no dashes: run=/x"),
        (["resolution.image_size=[[1920,1080]"], "override 'resolution.image_size=[[1920,1080]': "
         "the brackets are unbalanced (2 '[', 1 ']'): fix them, or quote the value"),
        (["tiny_llava"], "override 'tiny_llava': an override is key=value"),
    ],
)  # fmt: skip
def test_what_hydras_parser_refuses_is_named_with_the_fix(argv, expected):
    with pytest.raises(UserError) as err:
        checked(*argv)
    assert expected in str(err.value)


def test_hydras_flags_and_their_values_are_not_overrides():
    overrides, multirun, info = split_argv(["-m", "--cfg", "job", "-cd", "/c", "a=1", "-i"])
    assert overrides == ["a=1"] and multirun and info and overrides.config_dir == "/c"
    overrides, _, info = split_argv(["--config-name=mine.yaml", "--info", "searchpath", "b=2"])
    assert overrides == ["b=2"] and overrides.config_name == "mine" and info


def test_local_ranks_get_the_same_config_folders(user_conf):
    """The children mmfw-train starts for local ranks compose what rank 0 composed."""
    mine, other = user_conf
    with _initialized(str(mine)):  # as Hydra composes under mmfw-train --config-dir ...
        run = hydra_compose("my_train", ["name=x", *SMALL_TASK], return_hydra_config=True)
    HydraConfig.instance().set_config(run)
    try:
        args = composition_args()
    finally:
        HydraConfig.instance().cfg = None
    assert args == [
        "--config-dir", str(mine), "--config-name", "my_train",
        f"hydra.searchpath=['file://{other}']",
    ]  # fmt: skip
    again = checked(*args, "name=x", *SMALL_TASK)
    assert again == compose(["name=x", *SMALL_TASK], "my_train", str(mine))
    assert again.data.batch_size == 8
