"""The preflight's batch arithmetic: data that cannot fill one global batch is found before any
rank starts, counted from the sources where that is cheap."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate

import mmfw
from mmfw.data import sources
from mmfw.data.sources import JsonSource
from mmfw.validate import Checker, _data, validate_train
from tests.conftest import SMALL_TASK

DDP3 = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=3"]


def problems(*overrides: str) -> list[str]:
    """What the preflight's data checks find (``validate_train`` runs them first)."""
    c = Checker(mmfw.compose(["experiment=tiny_llava", *SMALL_TASK, *overrides]))
    _data(c)
    return c.problems


def test_three_devices_and_64_generated_records_are_refused_before_the_ranks_start():
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK, "synthetic.num_train=64", *DDP3])
    found = validate_train(cfg, check_devices=False)
    assert len(found) == 1
    assert "data.sources hold 64 training records (magnifier 64)" in found[0]
    assert "one global batch of 96 = data.batch_size=32 x 1 accumulation x 3 device(s)" in found[0]
    assert problems("synthetic.num_train=96", *DDP3) == []
    assert problems("synthetic.num_train=64", *DDP3, "data.batch_size=16") == []


def test_max_samples_and_epochs_count_as_the_sampler_counts():
    assert problems("synthetic.num_train=96", *DDP3, "data.sources.magnifier.epochs=0.5")
    found = problems(*DDP3, "data.sources.magnifier.max_samples=40")
    assert "hold 40 training records" in found[0]


def test_a_small_llava_file_is_counted(tmp_path, monkeypatch):
    path = tmp_path / "train.json"
    qa = [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hi."}]
    path.write_text(json.dumps([{"id": str(i), "conversations": qa} for i in range(20)]))
    data = ["data=llava_json", f"data.sources.main.path={path}", "data.batch_size=8"]
    found = problems(*data, *DDP3)
    assert len(found) == 1 and "hold 20 training records (main 20)" in found[0]
    assert problems(*data, "trainer.devices=1") == []
    (tmp_path / "empty.json").write_text("[]")
    empty = problems("data=llava_json", f"data.sources.main.path={tmp_path / 'empty.json'}")
    assert empty == [
        f"data.sources.main.path='{tmp_path / 'empty.json'}': holds no records; give a file with records"
    ]
    # A large file that is not indexed yet is not read here: the sampler finds it later.
    monkeypatch.setattr(sources, "COUNT_BYTES", 10)
    assert JsonSource(path=str(path.with_name("copy.json"))).size_hint() is None
    Path(path.with_name("copy.json")).write_text(path.read_text())
    assert JsonSource(path=str(path.with_name("copy.json"))).size_hint() is None
    assert JsonSource(path=str(path)).size_hint() == 20  # indexed above


def test_the_configured_size_of_a_generated_split_is_what_it_generates(tmp_path):
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK, f"paths.cache={tmp_path}"])
    src = instantiate(cfg.data.sources.magnifier)
    assert src.size_hint() == 96
    assert len(src.records()) == 96 and src.size_hint() == 96


def test_context_parallel_is_checked_against_the_heads_and_the_fusion_before_the_ranks_start():
    ddp2 = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    ok = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK, *ddp2, "trainer.context_parallel=2"])
    assert validate_train(ok, check_devices=False) == []
    odd = mmfw.compose(
        ["experiment=tiny_llava", *SMALL_TASK, *ddp2, "trainer.context_parallel=2"]
        + ["llm.config.num_key_value_heads=1"]
    )
    (found,) = validate_train(odd, check_devices=False)
    assert "attention heads (4) and key/value heads (1)" in found and "divisor of 1" in found
    owl = mmfw.compose(
        ["experiment=tiny_mplug_owl3_7b", *ddp2, "trainer.context_parallel=2", "data.batch_size=2"]
    )
    assert any("needs inline fusion" in p for p in validate_train(owl, check_devices=False))
