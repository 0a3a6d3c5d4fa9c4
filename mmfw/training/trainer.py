"""The ``trainer`` config group: devices, precision, strategy and loop settings → a Lightning Trainer."""

from __future__ import annotations

import inspect
from typing import Any

from mmfw.training.batching import derive_accumulation, device_count
from mmfw.training.strategies.base import BatchPlan, StrategySpec
from mmfw.training.strategies.single import SingleDevice

# trainer.nan_policy values (mmfw.training.numerics.NumericsGuard).
POLICIES = ("stop", "skip_batch")

# Trainer arguments mmfw wires itself (from other config groups or derived numbers).
WIRED = {
    "strategy",
    "logger",
    "callbacks",
    "plugins",
    "default_root_dir",
    "accumulate_grad_batches",
    "use_distributed_sampler",
}


class TrainerSpec:
    """How a run trains: hardware, precision, distribution strategy and loop length.

    Yaml keys:
      accelerator: cpu | gpu | auto.
      devices: processes per node (one per GPU); ``auto`` = every visible GPU.
      num_nodes: machines (SLURM fills ranks from its environment).
      precision: 32-true | bf16-mixed | bf16-true | 16-mixed (Lightning's names).
      strategy: a ``mmfw.training.strategies`` choice: SingleDevice, DDP, DeepSpeed, FSDP2.
      attn_implementation: sdpa | flash_attention_2 | eager; the LLM and encoder yamls follow
        it (flash_attention_2 falls back to sdpa with a warning where flash-attn is missing).
      gpu: name of the GPU model, looked up in ``peak_tflops_by_gpu`` for MFU.
      peak_tflops_by_gpu: dense bf16 TFLOP/s of common GPUs (vendor datasheets).
      peak_tflops: peak TFLOP/s of one device; overrides the table (set it on a CPU to get MFU).
      requeue_on_preemption: under SLURM, a pre-emption/time-limit signal saves a checkpoint
        and requeues the job (it resumes with ``resume=auto``).
      activation_checkpointing: modules (encoder, llm) whose blocks recompute activations in
        backward, on top of the stage's ``gradient_checkpointing``.
      accumulate_grad_batches: used only when ``data.global_batch_size`` is null.
      context_parallel: N ranks split every sequence of a micro-batch (Ulysses all-to-all
        around attention, ``mmfw.models.context_parallel``); the data-parallel replicas are
        processes / N. N must divide the processes and the LLM's key/value heads; 1: off.
      encoder_balance: every rank encodes an equal share of the step's image views (pixels
        and features travel by all-to-all, ``mmfw.models.encoder_balance``); off: each rank
        encodes its own batch's views (each rank of a context-parallel group, all of them).
      compile: torch.compile every LLM decoder layer and vision encoder block (regional,
        ``mmfw.training.compile``); pair it with ``data.fixed_rows`` / ``data.fixed_views`` so
        every step has the same shapes. false: eager.
      nan_policy: stop | skip_batch: what a non-finite loss or gradient norm does. ``stop``
        ends the run at that step (the step and the batch's record ids named, no checkpoint
        written from the bad state); ``skip_batch`` drops that step's gradients and counts it.
      nan_max_skips: with ``skip_batch``, the run stops after this many dropped steps.
      zero_target_batches: this many micro-batches in a row without a target token (every
        label masked) stop the run naming the template; null: no check.
      first_loss_max_ratio: the mean loss of the first 3 steps above this x ln(vocab) stops
        the run (a broken init or a tokenizer that does not match the LLM); null: no check.
      extra: any other ``lightning.Trainer`` argument, passed through.
      The rest (max_steps, max_epochs, gradient_clip_val, val_check_interval, ...) are the
      Lightning Trainer's own arguments.
    """

    def __init__(
        self,
        *,
        accelerator: str = "cpu",
        devices: int | str | list = 1,
        num_nodes: int = 1,
        precision: str = "32-true",
        strategy: StrategySpec | None = None,
        attn_implementation: str = "sdpa",
        gpu: str | None = None,
        peak_tflops_by_gpu: dict[str, float] | None = None,
        peak_tflops: float | None = None,
        requeue_on_preemption: bool = True,
        activation_checkpointing: list[str] | None = None,
        max_steps: int = -1,
        max_epochs: int | None = None,
        accumulate_grad_batches: int = 1,
        context_parallel: int = 1,
        encoder_balance: bool = False,
        compile: bool = False,
        gradient_clip_val: float | None = None,
        val_check_interval: int | float | None = None,
        check_val_every_n_epoch: int | None = 1,
        num_sanity_val_steps: int = 0,
        log_every_n_steps: int = 50,
        enable_progress_bar: bool = True,
        enable_model_summary: bool = False,
        deterministic: bool | str = False,
        nan_policy: str = "stop",
        nan_max_skips: int = 10,
        zero_target_batches: int | None = 3,
        first_loss_max_ratio: float | None = 3.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if num_nodes < 1:
            raise ValueError(f"trainer.num_nodes={num_nodes} must be >= 1")
        if nan_policy not in POLICIES:
            raise ValueError(f"trainer.nan_policy={nan_policy!r}: use one of {', '.join(POLICIES)}")
        if zero_target_batches is not None and int(zero_target_batches) < 1:
            raise ValueError(
                f"trainer.zero_target_batches={zero_target_batches}: >= 1, or null for no check"
            )
        self.numerics = {
            "policy": nan_policy,
            "max_skips": int(nan_max_skips),
            "zero_target_batches": zero_target_batches,
            "first_loss_max_ratio": first_loss_max_ratio,
        }
        self.accelerator = accelerator
        self.devices = devices
        self.num_nodes = int(num_nodes)
        self.precision = str(precision)
        self.strategy = strategy or SingleDevice()
        self.attn_implementation = attn_implementation
        # A GPU table entry says nothing about a CPU run (trainer=ddp trainer.accelerator=cpu).
        self.peak_tflops = _peak(
            None if accelerator == "cpu" else gpu, dict(peak_tflops_by_gpu or {}), peak_tflops
        )
        self.activation_checkpointing = list(activation_checkpointing or [])
        self.requeue_on_preemption = requeue_on_preemption
        self.accumulate_grad_batches = int(accumulate_grad_batches)
        if int(context_parallel) < 1:
            raise ValueError(f"trainer.context_parallel={context_parallel} must be >= 1 (1: off)")
        self.context_parallel = int(context_parallel)
        self.encoder_balance = bool(encoder_balance)
        self.compile = bool(compile)
        self.gradient_clip_val = gradient_clip_val
        self.loop = {
            "max_steps": max_steps,
            "max_epochs": max_epochs,
            "gradient_clip_val": gradient_clip_val,
            "val_check_interval": val_check_interval,
            "check_val_every_n_epoch": check_val_every_n_epoch,
            "num_sanity_val_steps": num_sanity_val_steps,
            "log_every_n_steps": log_every_n_steps,
            "enable_progress_bar": enable_progress_bar,
            "enable_model_summary": enable_model_summary,
            "deterministic": deterministic,
        }
        self.extra = dict(extra or {})
        # lightning is imported only here and in build(): the preflight builds this object
        # and must stay fast when a command fails.
        known = set(inspect.signature(_lightning().Trainer).parameters) if self.extra else set()
        for key in self.extra:
            if key not in known or key in WIRED or key in self.loop:
                raise ValueError(
                    f"trainer.extra.{key}: not a Lightning Trainer argument mmfw passes through"
                    + (" (mmfw sets it itself)" if key in WIRED else "")
                    + (f" (use trainer.{key})" if key in self.loop else "")
                )

    @property
    def max_steps(self) -> int:
        return self.loop["max_steps"]

    @property
    def processes_per_node(self) -> int:
        return device_count(self.accelerator, self.devices)

    @property
    def world(self) -> int:
        return self.processes_per_node * self.num_nodes

    def batch_plan(self, micro_batch: int, global_batch_size: int | None) -> BatchPlan:
        accumulate = derive_accumulation(
            global_batch_size=global_batch_size,
            micro_batch=int(micro_batch),
            world=self.world,
            accumulate=self.accumulate_grad_batches,
            context_parallel=self.context_parallel,
        )
        return BatchPlan(
            micro_batch=int(micro_batch),
            accumulate=accumulate,
            world=self.world,
            gradient_clip_val=self.gradient_clip_val,
            precision=self.precision,
            context_parallel=self.context_parallel,
        )

    def build(
        self, plan: BatchPlan, *, logger, callbacks: list, plugins: list, default_root_dir: str
    ) -> Any:
        """The Lightning Trainer of this run (the sampler shards data itself, so Lightning's
        distributed sampler is off)."""
        return _lightning().Trainer(
            accelerator=self.accelerator,
            devices=self.devices,
            num_nodes=self.num_nodes,
            precision=self.precision,
            strategy=self.strategy.lightning(plan, self.accelerator),
            accumulate_grad_batches=plan.accumulate,
            use_distributed_sampler=False,
            logger=logger,
            callbacks=callbacks,
            plugins=plugins
            if self.strategy.uses_checkpoint_io
            else [p for p in plugins if not _is_checkpoint_io(p)],
            default_root_dir=default_root_dir,
            **self.loop,
            **self.extra,
        )


def _is_checkpoint_io(plugin) -> bool:
    from lightning.fabric.plugins import CheckpointIO

    return isinstance(plugin, CheckpointIO)


def _lightning():
    import lightning

    return lightning


def _peak(gpu: str | None, table: dict[str, float], peak: float | None) -> float | None:
    if peak is not None:
        if peak <= 0:
            raise ValueError(f"trainer.peak_tflops={peak} must be positive (or null)")
        return float(peak)
    if gpu is None:
        return None
    if gpu not in table:
        raise ValueError(
            f"trainer.gpu={gpu!r} is not in trainer.peak_tflops_by_gpu ({sorted(table)}): "
            "set trainer.peak_tflops=<dense bf16 TFLOP/s of one device>"
        )
    return float(table[gpu])
