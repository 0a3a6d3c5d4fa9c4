"""The numerics guard: a run never trains on silently with a NaN/Inf loss or gradient, with
batches whose every label is masked, or from a start whose loss is far above ln(vocab)."""

from __future__ import annotations

import math

import lightning as L
import torch

from mmfw.errors import UserError
from mmfw.training.trainer import POLICIES

IGNORE_INDEX = -100


class NonFiniteError(UserError):
    """A non-finite loss or gradient norm at ``step`` (the run stops there)."""

    def __init__(self, message: str, step: int, ids: list[str]) -> None:
        super().__init__(message)
        self.step = step
        self.ids = ids


class NumericsGuard(L.Callback):
    """Checks every optimizer step before the weights change.

    - loss or gradient norm not finite: ``policy=stop`` raises :class:`NonFiniteError` naming
      the step and the batch's record ids (no checkpoint is written from the bad state);
      ``skip_batch`` drops the step's gradients, counts it (``train/nan_skipped``) and stops
      once more than ``max_skips`` steps were dropped.
    - ``zero_target_batches`` micro-batches in a row without one target token, or one whose
      loss is then 0/0: an error that names the template and label masking (LLaVA's "loss 0"
      bug).
    - the mean loss of the first ``first_steps`` steps above ``first_loss_max_ratio`` x
      ln(vocab): an error naming a broken init or a tokenizer that does not match the model.
    """

    def __init__(
        self,
        policy: str = "stop",
        max_skips: int = 10,
        zero_target_batches: int | None = 3,
        first_loss_max_ratio: float | None = 3.0,
        first_steps: int = 3,
        vocab_size: int | None = None,
        template: str | None = None,
        last_good: callable | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"trainer.nan_policy={policy!r}: use one of {', '.join(POLICIES)}")
        self.policy = policy
        self.max_skips = int(max_skips)
        self.zero_target_batches = zero_target_batches
        self.first_loss_max_ratio = first_loss_max_ratio
        self.first_steps = int(first_steps)
        self.vocab_size = vocab_size
        self.template = template
        self.last_good = last_good  # () -> the newest intact checkpoint, for the message
        self.skipped = 0
        self._zero_run = 0
        self._step_zero = False  # a micro-batch of this step had no target token
        self._ids: list[str] = []
        self._first: list[float] = []

    # -- every micro-batch -------------------------------------------------------------------

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._ids.extend(str(i) for i in batch.get("ids") or [])
        if not self.zero_target_batches or batch.get("labels") is None:
            return
        targets = (batch["labels"] != IGNORE_INDEX).sum().to(torch.float64)
        if trainer.world_size > 1:  # every rank must stop together, or the others hang
            targets = trainer.strategy.reduce(targets.to(pl_module.device), reduce_op="sum")
        self._zero_run = self._zero_run + 1 if float(targets) == 0 else 0
        self._step_zero = self._step_zero or self._zero_run > 0
        if self._zero_run >= int(self.zero_target_batches):
            self._raise_zero_targets(trainer)

    def _raise_zero_targets(self, trainer, ids: list[str] | None = None) -> None:
        ids = self._ids if ids is None else ids
        raise UserError(
            f"step {trainer.global_step}: {self._zero_run} batch(es) in a row have no target "
            f"token (every label is masked; records {', '.join(ids[-8:])}). The loss "
            f"would be 0 and nothing would train. Check the template (template="
            f"{self.template}) and its label masking: the assistant turns must stay "
            "unmasked, and data.max_length must leave room for the answers. "
            "(trainer.zero_target_batches=null turns this check off.)"
        )

    # -- every optimizer step ----------------------------------------------------------------

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        # The losses of the micro-batches this step accumulated (VLMModule keeps them).
        losses, pl_module.step_losses = pl_module.step_losses, []
        loss = torch.stack([x.float() for x in losses]).mean() if losses else None
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        bad_loss = loss is not None and not bool(torch.isfinite(loss).all())
        bad_grad = bool(grads) and not _finite(grads)
        flags = torch.tensor([float(bad_loss), float(bad_grad)], device=pl_module.device)
        if trainer.world_size > 1:
            flags = trainer.strategy.reduce(flags, reduce_op="max")
        bad_loss, bad_grad = bool(flags[0]), bool(flags[1])
        step = int(trainer.global_step)
        ids, self._ids = self._ids, []
        zero, self._step_zero = self._step_zero, False
        if (bad_loss or bad_grad) and zero:
            self._raise_zero_targets(trainer, ids)  # the loss of a batch without targets is 0/0
        if not (bad_loss or bad_grad):
            self._check_first_loss(trainer, loss)
            return
        what = "loss" if bad_loss else "gradient norm"
        value = float(loss) if bad_loss and loss is not None else float("nan")
        if (
            self.policy == "skip_batch"
            and self.skipped < self.max_skips
            and not _is_deepspeed(trainer)
        ):
            self.skipped += 1
            optimizer.zero_grad(set_to_none=True)
            pl_module.log("train/nan_skipped", float(self.skipped), rank_zero_only=True)
            print(
                f"mmfw: step {step}: non-finite {what}; batch skipped "
                f"({self.skipped}/{self.max_skips}; records {', '.join(ids[:8])})"
            )
            return
        last = self.last_good() if self.last_good else None
        reason = (
            f"more than trainer.nan_max_skips={self.max_skips} steps skipped; "
            if self.policy == "skip_batch"
            else ""
        )
        raise NonFiniteError(
            f"step {step}: the {what} is not finite ({value}); {reason}records of the batch: "
            f"{', '.join(ids[:16]) or '(no ids)'}. The run stopped before the weights changed; "
            + (
                f"the last good checkpoint is {last} (resume=auto continues from it). "
                if last
                else "no checkpoint was written yet. "
            )
            + "Lower optim.lr, set trainer.gradient_clip_val, or trainer.nan_policy=skip_batch "
            "to drop such batches.",
            step,
            ids,
        )

    def _check_first_loss(self, trainer, loss) -> None:
        if self.first_loss_max_ratio is None or not self.vocab_size or loss is None:
            return
        if len(self._first) >= self.first_steps:
            return
        if trainer.world_size > 1:  # one verdict for every rank
            loss = trainer.strategy.reduce(loss, reduce_op="mean")
        self._first.append(float(loss))
        if len(self._first) < self.first_steps:
            return
        mean = sum(self._first) / len(self._first)
        chance = math.log(self.vocab_size)
        if mean > self.first_loss_max_ratio * chance:
            raise UserError(
                f"the loss of the first {self.first_steps} steps is {mean:.2f}, more than "
                f"{self.first_loss_max_ratio:g} x ln(vocab {self.vocab_size}) = "
                f"{self.first_loss_max_ratio * chance:.2f}: a model at chance would be near "
                f"{chance:.2f}. The weights start broken (init, a wrong checkpoint) or the "
                "tokenizer does not match the LLM's embeddings. "
                "(trainer.first_loss_max_ratio=null turns this check off.)"
            )

    def state_dict(self) -> dict:
        return {"skipped": self.skipped, "first": self._first}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = int(state.get("skipped", 0))
        self._first = list(state.get("first", []))


def _finite(grads: list[torch.Tensor]) -> bool:
    """All gradients finite (one reduction: the norm of the norms)."""
    local = [g.to_local() if hasattr(g, "to_local") else g for g in grads]
    norms = torch._foreach_norm(local)
    return bool(torch.isfinite(torch.stack([n.float() for n in norms]).sum()))


def _is_deepspeed(trainer) -> bool:
    from lightning.pytorch.strategies import DeepSpeedStrategy

    return isinstance(trainer.strategy, DeepSpeedStrategy)
