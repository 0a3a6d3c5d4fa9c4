"""Model-state memory per device (ZeRO paper accounting, as each engine implements it).

Per trainable parameter, mixed-precision Adam needs 16-bit weights and gradients plus 12
bytes of float32 optimizer state (master weights, first and second moments: the ZeRO paper's
2 + 2 + 12). Engines store them differently, and the plan follows each one:

- torch engines (single device, DDP, FSDP2): mmfw keeps trainable weights in float32 and
  autocasts (``*-mixed``), so a trainable parameter holds 4 (weight) + 4 (gradient) + the
  optimizer's state (AdamW 8, Adafactor ~0); ``bf16-true`` halves all three. FSDP2 shards all
  three over the ranks and gathers one block (weights + gradients at the compute dtype) at a
  time.
- DeepSpeed: the module is cast to 16 bits (2 bytes for every parameter); the optimizer adds
  a float32 master copy (4) to its state; gradients are 16-bit plus the float32 gradient
  partition DeepSpeed accumulates into (ZeRO-2: 2 + 4, sharded; ZeRO-3: 4, sharded), and
  ZeRO-3 gathers the largest layer's 16-bit weights and gradients (4 bytes per parameter) —
  the terms of DeepSpeed's own ``estimate_zero2/3_model_states_mem_needs``.
- ZeRO-1/2 shard optimizer (and gradients); ZeRO-3 and FSDP shard everything; offloading
  moves the optimizer (and for DeepSpeed its float32 gradients) or the weights to CPU memory.
Frozen parameters cost their stored weights only. Activations are not included.
"""

from __future__ import annotations

from torch import nn

from mmfw.models.blocks import transformer_blocks
from mmfw.training.strategies.base import Sharding


def largest_layer(model: nn.Module) -> int:
    """DeepSpeed's "largest layer": the most parameters one module holds directly."""
    return max(
        (sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0
    )


def largest_unit(model: nn.Module) -> int:
    """FSDP2's largest shard unit: a block, or everything outside the blocks."""
    blocks = transformer_blocks(model)
    inside = {id(p) for b in blocks for p in b.parameters()}
    rest = sum(p.numel() for p in model.parameters() if id(p) not in inside)
    return max([rest, *(sum(p.numel() for p in b.parameters()) for b in blocks)])


def model_state_memory(
    model: nn.Module,
    *,
    strategy: str,
    sharding: Sharding,
    precision: str,
    devices: int,
    optimizer_bytes: float,
    compute_bytes: int = 2,
) -> dict:
    """The ``memory`` block of ``mmfw-plan`` (bytes)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen_bytes = sum(
        p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad
    )
    total_params = sum(p.numel() for p in model.parameters())
    half = precision.startswith(("bf16", "16"))
    pure_half = precision in ("bf16-true", "16-true")
    gathered = 0
    cpu = {"weights": 0.0, "gradients": 0.0, "optimizer": 0.0}
    if sharding.accounting == "deepspeed":
        weight_b = 2 if half else 4
        weights = weight_b * total_params
        if half:
            grads = (2 + 4 if sharding.gradients and not sharding.weights else 4) * trainable
            optim = (4 + optimizer_bytes) * trainable
        else:
            grads = 4 * trainable
            optim = optimizer_bytes * trainable
        if sharding.gathers_layers:
            gathered = 4 * largest_layer(model)
    else:
        weight_b = 2 if pure_half else 4
        weights = weight_b * trainable + frozen_bytes
        grads = weight_b * trainable
        optim = optimizer_bytes * trainable * (0.5 if pure_half else 1.0)
        if sharding.gathers_layers:
            gathered = 2 * (compute_bytes if half else 4) * largest_unit(model)
    n = max(1, int(devices))
    weights /= n if sharding.weights else 1
    grads /= n if sharding.gradients else 1
    optim /= n if sharding.optimizer else 1
    if sharding.offload_optimizer:
        cpu["optimizer"] = optim
        optim = 0.0
        if sharding.accounting == "deepspeed":  # its float32 gradients live with the optimizer
            cpu["gradients"] = grads
            grads = 0.0
    if sharding.offload_params:
        cpu["weights"] = weights
        weights = 0.0
    per_device = {
        "weights": int(weights),
        "gradients": int(grads),
        "optimizer": int(optim),
        "gathered": int(gathered),
    }
    per_device["total"] = sum(per_device.values())
    out = {"strategy": strategy, "devices": n, "precision": precision, "per_device": per_device}
    if any(cpu.values()):
        out["cpu_per_device"] = {k: int(v) for k, v in cpu.items()}
    return out
