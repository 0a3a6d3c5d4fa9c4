"""Global batch → per-device micro-batch × gradient accumulation × data-parallel ranks."""

from __future__ import annotations


def device_count(accelerator: str, devices) -> int:
    """Processes per node that ``trainer.devices`` asks for (``auto``/-1: every visible GPU)."""
    if isinstance(devices, int) and devices > 0:
        return devices
    if isinstance(devices, (list, tuple)) and devices:
        return len(devices)
    if devices in ("auto", -1, "-1"):
        import torch  # only here: config validation imports this module and must stay fast

        if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
            return torch.cuda.device_count()
        return 1
    raise ValueError(
        f"trainer.devices={devices!r}: use a positive number of devices, a list of device "
        "indices, or auto"
    )


def derive_accumulation(
    *,
    global_batch_size: int | None,
    micro_batch: int,
    world: int,
    accumulate: int = 1,
    context_parallel: int = 1,
) -> int:
    """Gradient-accumulation steps that make ``micro_batch x accumulation x replicas`` equal
    the global batch a user set (``data.global_batch_size``; LLaVA: 256 to align, 128 to SFT).
    The data-parallel replicas are ``world / context_parallel``: the ranks of one
    context-parallel group share each micro-batch.

    With ``global_batch_size`` null the global batch follows from ``trainer.accumulate_grad_batches``.
    """
    if context_parallel < 1 or world % context_parallel:
        raise ValueError(
            f"trainer.context_parallel={context_parallel} must divide the {world} process(es) "
            "(trainer.devices x trainer.num_nodes) into whole data-parallel replicas"
        )
    cp_note = f" / context_parallel {context_parallel}" if context_parallel > 1 else ""
    world //= context_parallel
    if micro_batch < 1:
        raise ValueError(f"data.batch_size={micro_batch} must be a positive micro-batch size")
    if global_batch_size is None:
        if accumulate < 1:
            raise ValueError(f"trainer.accumulate_grad_batches={accumulate} must be >= 1")
        return int(accumulate)
    if global_batch_size < 1:
        raise ValueError(f"data.global_batch_size={global_batch_size} must be positive (or null)")
    if accumulate != 1:
        raise ValueError(
            f"trainer.accumulate_grad_batches={accumulate} conflicts with data.global_batch_size="
            f"{global_batch_size}: the accumulation is derived from the global batch; leave "
            "trainer.accumulate_grad_batches=1 or set data.global_batch_size=null"
        )
    per_rank, rest = divmod(global_batch_size, world)
    if rest or per_rank % micro_batch:
        fits = [m for m in range(1, micro_batch + 1) if per_rank and per_rank % m == 0 and not rest]
        hint = (
            f"e.g. data.batch_size={fits[-1]}"
            if fits
            else f"a global batch that is a multiple of {world * micro_batch}"
        )
        raise ValueError(
            f"data.global_batch_size={global_batch_size} does not split into data.batch_size="
            f"{micro_batch} per replica x {world} replica(s) (trainer.devices x trainer.num_nodes"
            f"{cp_note}) "
            f"x an integer accumulation: use {hint}"
        )
    return per_rank // micro_batch
