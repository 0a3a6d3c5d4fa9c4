"""``mmfw-train +pipeline=llava15``: align → sft, each stage from the last one's weights."""

from __future__ import annotations

import json

import pytest
import torch

from mmfw.run_dir.checkpoints import model_state, read_checkpoint
from mmfw.training.init_from import fingerprint
from tests.conftest import SMALL_TASK, run_cli

ARGS = [
    "+pipeline=llava15",
    "experiment=tiny_llava",
    *SMALL_TASK,
    "data.batch_size=4",
    "data.global_batch_size=8",  # the command line wins over each stage's 256 / 128
    "trainer.max_steps=3",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "benchmarks.synthetic_magnifier.max_samples=4",
]


@pytest.mark.slow  # the default suite stays under 12 minutes; make test-full runs it
def test_llava15_pipeline_chains_align_and_sft(tmp_path):
    out = run_cli("mmfw-train", *ARGS, f"hydra.run.dir={tmp_path}")
    align, sft = tmp_path / "align", tmp_path / "sft"
    for stage in (align, sft):
        assert json.loads((stage / "run.json").read_text())["status"] == "finished"
    cfg_align = read_checkpoint(align / "checkpoints" / "last.ckpt")["mmfw_config"]
    cfg_sft = read_checkpoint(sft / "checkpoints" / "last.ckpt")["mmfw_config"]
    assert cfg_align["template"]["_target_"].endswith("PlainTemplate")
    assert cfg_align["stage"]["lr"] == 1e-3 and cfg_sft["stage"]["lr"] == 2e-5
    assert cfg_sft["stage"]["init_from"] == str(align)

    a = model_state(read_checkpoint(align / "checkpoints" / "last.ckpt"))
    s = model_state(read_checkpoint(sft / "checkpoints" / "last.ckpt"))
    # sft started from exactly align's final weights (the loaded tensors' fingerprint) ...
    loaded = json.loads((sft / "optimizer_groups.json").read_text())["init_from"]
    assert loaded["sha256"] == fingerprint(a) and loaded["tensors"] == len(a)
    # ... the encoder, frozen in both stages, is bit-identical; what sft trains has moved.
    encoder = [k for k in a if k.startswith("encoder.")]
    assert encoder and all(torch.equal(a[k], s[k]) for k in encoder)
    assert any(not torch.equal(a[k], s[k]) for k in a if k.startswith("llm."))
    # The tokenizer is align's: its embedding rows mean the same tokens in sft.
    assert (align / "tokenizer" / "tokenizer.json").read_text() == (
        sft / "tokenizer" / "tokenizer.json"
    ).read_text()
    assert json.loads((tmp_path / "pipeline.json").read_text())["stages"] == {
        "align": str(align),
        "sft": str(sft),
    }
    assert "starting stage align" in out.stdout and "starting stage sft" in out.stdout

    # Re-running the pipeline skips finished stages and trains nothing again.
    stamp = (sft / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    again = run_cli("mmfw-train", *ARGS, f"hydra.run.dir={tmp_path}")
    assert "stage align already finished" in again.stdout
    assert "stage sft already finished" in again.stdout
    assert (sft / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_an_interrupted_stage_is_resumed_by_the_rerun(tmp_path):
    run_cli("mmfw-train", *ARGS, f"hydra.run.dir={tmp_path}")
    record = tmp_path / "sft" / "run.json"
    data = json.loads(record.read_text())
    data["status"] = "interrupted"  # as a pre-empted job leaves it
    record.write_text(json.dumps(data))
    again = run_cli("mmfw-train", *ARGS, "trainer.max_steps=5", f"hydra.run.dir={tmp_path}")
    assert "stage align already finished" in again.stdout
    assert "resuming stage sft" in again.stdout
    assert "Restoring states from the checkpoint path" in again.stdout + again.stderr
    assert read_checkpoint(tmp_path / "sft" / "checkpoints" / "last.ckpt")["global_step"] == 5
