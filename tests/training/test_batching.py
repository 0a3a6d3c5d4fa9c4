"""Global batch → micro-batch x accumulation x devices, and the errors that name the keys."""

from __future__ import annotations

import pytest

from mmfw.training.batching import derive_accumulation, device_count


@pytest.mark.parametrize(
    ("global_batch", "micro", "world", "expected"),
    [(256, 16, 8, 2), (128, 16, 8, 1), (256, 4, 1, 64), (8, 4, 2, 1), (96, 4, 8, 3)],
)
def test_accumulation_makes_the_global_batch(global_batch, micro, world, expected):
    acc = derive_accumulation(global_batch_size=global_batch, micro_batch=micro, world=world)
    assert acc == expected and micro * acc * world == global_batch


def test_without_a_global_batch_the_trainer_accumulation_is_used():
    assert derive_accumulation(global_batch_size=None, micro_batch=4, world=2, accumulate=3) == 3


def test_a_global_batch_that_does_not_split_names_the_keys_and_a_fix():
    with pytest.raises(ValueError) as err:
        derive_accumulation(global_batch_size=100, micro_batch=16, world=8)
    msg = str(err.value)
    assert "data.global_batch_size=100" in msg and "data.batch_size=16" in msg
    assert "trainer.devices" in msg
    with pytest.raises(ValueError, match=r"e\.g\. data\.batch_size=6"):
        derive_accumulation(global_batch_size=12, micro_batch=8, world=2)


def test_accumulation_set_twice_is_refused():
    with pytest.raises(ValueError, match="trainer.accumulate_grad_batches=2 conflicts"):
        derive_accumulation(global_batch_size=64, micro_batch=8, world=1, accumulate=2)


def test_device_counts():
    assert device_count("cpu", 2) == 2
    assert device_count("cpu", [0, 1, 2]) == 3
    assert device_count("cpu", "auto") == 1
    with pytest.raises(ValueError, match="trainer.devices=0"):
        device_count("cpu", 0)
