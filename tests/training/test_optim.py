"""Warmup + cosine schedule."""

from __future__ import annotations

import pytest

from mmfw.training.optim import warmup_cosine


def test_warmup_then_cosine_to_floor():
    f = warmup_cosine(total_steps=100, warmup_ratio=0.1, min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.55, abs=0.01)
    assert f(100) == pytest.approx(0.1)
    assert all(f(i) >= f(i + 1) for i in range(10, 100))


def test_warmup_steps_win_over_the_ratio():
    f = warmup_cosine(total_steps=100, warmup_ratio=0.5, min_lr_ratio=0.0, warmup_steps=4)
    assert f(0) == pytest.approx(0.25) and f(3) == pytest.approx(1.0) and f(4) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["adamw_cosine", "adafactor_cosine"])
def test_each_optimizer_trains_a_small_regression(name):
    import torch
    from hydra.utils import instantiate

    import mmfw

    torch.manual_seed(0)
    optim = instantiate(mmfw.compose([f"optim={name}", "optim.warmup_steps=0"]).optim)
    layer = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    built = optim.build([{"params": list(layer.parameters()), "lr": 0.05, "weight_decay": 0.0}], 50)
    opt, sched = built["optimizer"], built["lr_scheduler"]["scheduler"]
    first = None
    for _ in range(50):
        loss = torch.nn.functional.mse_loss(layer(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert loss.item() < 0.8 * first


def test_bad_schedule_values_are_named():
    from mmfw.training.optim import AdamWCosine

    with pytest.raises(ValueError, match="optim.warmup_steps=-1"):
        AdamWCosine(warmup_steps=-1)
    with pytest.raises(ValueError, match="optim.min_lr_ratio=2"):
        AdamWCosine(min_lr_ratio=2)
