"""A run's directory changes only by a compatible attempt: a resume with another model is
refused before anything is written (the differing keys named), every attempt is kept in
run.json and in its own .hydra/attempts/<n>, and a failed attempt leaves a finished run
finished."""

from __future__ import annotations

import json

import pytest

import mmfw
from mmfw.config import attempt_subdir
from mmfw.errors import UserError
from mmfw.training.module import VLMModule
from mmfw.training.numerics import NonFiniteError
from mmfw.training.run import train
from mmfw.training.run_compat import differences
from tests.conftest import SMALL_TASK, run_cli
from tests.helpers import tree

ARGS = [
    "experiment=tiny_llava",
    *SMALL_TASK,
    "data.batch_size=4",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "checkpoint.every_n_train_steps=2",
]


@pytest.mark.slow  # the default suite stays under 12 minutes; make test-full runs it (the bad-input table checks the refusal in the default suite)
def test_resuming_a_finished_run_with_another_experiment_is_refused_and_changes_nothing(
    tmp_path,
):
    run_cli("mmfw-train", *ARGS, "trainer.max_steps=2", f"hydra.run.dir={tmp_path}")
    before = tree(tmp_path)
    other = [a if a != "experiment=tiny_llava" else "experiment=tiny_llava_next_7b" for a in ARGS]
    out = run_cli(
        "mmfw-train", *other, "trainer.max_steps=4", "resume=auto", f"hydra.run.dir={tmp_path}",
        check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "this run holds experiment=tiny_llava" in out.stderr
    assert "you asked for experiment=tiny_llava_next_7b" in out.stderr
    assert "model key(s) differ" in out.stderr and "resolution._target_" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert tree(tmp_path) == before  # byte for byte: config, run.json, CSV, checkpoints
    # The run still evaluates: nothing it holds was touched.
    run_cli("mmfw-eval", f"run={tmp_path}")


def test_a_failed_attempt_keeps_a_finished_run_finished_and_its_config(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    base = [*ARGS, "data.num_workers=0", "evaluate.at_end=false"]
    train(mmfw.compose([*base, "trainer.max_steps=2"]), run_dir, overrides=["first"])
    config = (run_dir / ".hydra" / "config.yaml").read_bytes()
    finished = json.loads((run_dir / "run.json").read_text())
    original = VLMModule._step

    def nan_at_3(self, batch, prefix):
        loss = original(self, batch, prefix)
        if prefix == "train" and self.trainer.global_step == 3:
            loss = loss * float("nan")
            self.step_losses[-1] = loss.detach()
        return loss

    monkeypatch.setattr(VLMModule, "_step", nan_at_3)
    with pytest.raises(NonFiniteError):
        train(
            mmfw.compose([*base, "trainer.max_steps=6", "resume=auto"]),
            run_dir,
            overrides=["second", "resume=auto"],
        )
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["ended"] == finished["ended"]
    assert record["error"] is None and record["overrides"] == ["first"]
    assert [a["status"] for a in record["attempts"]] == ["finished", "failed"]
    assert record["attempts"][1]["overrides"] == ["second", "resume=auto"]
    assert "not finite" in record["attempts"][1]["error"]
    # The attempt did not train to its end: the run's config is still the one it finished with.
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == config


def test_model_keys_decide_and_training_keys_do_not():
    held = mmfw.compose(["experiment=tiny_llava"])
    from omegaconf import OmegaConf

    a = OmegaConf.to_container(held, resolve=True)
    b = json.loads(json.dumps(a))
    b["stage"]["lr"] = 1.0
    b["trainer"]["max_steps"] = 10_000
    b["data"]["batch_size"] = 64
    b["encoder"]["new_key_left_null"] = None  # a key added to mmfw since: no difference
    assert differences(a, b) == []
    b["llm"]["config"]["hidden_size"] = 128
    b["stage"]["trainable"]["encoder"] = False
    assert [k for k, *_ in differences(a, b)] == [
        "llm.config.hidden_size",
        "stage.trainable.encoder",
    ]


def test_each_attempt_gets_its_own_hydra_folder(tmp_path):
    assert attempt_subdir(str(tmp_path)) == ".hydra"
    (tmp_path / "run.json").write_text(json.dumps({"attempts": [{}, {}]}))
    assert attempt_subdir(str(tmp_path)) == ".hydra/attempts/3"
    (tmp_path / "run.json").write_text(json.dumps({"attempts": 1}))  # records before 0.2
    assert attempt_subdir(str(tmp_path)) == ".hydra/attempts/2"


def test_train_is_one_rank_and_leaves_launching_to_the_cli(tmp_path):
    cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
        ]  # fmt: skip
    )
    with pytest.raises(
        UserError, match=r"trainer.devices=2 needs one process per device.*mmfw-train"
    ):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
