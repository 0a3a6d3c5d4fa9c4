"""Context parallelism for the LLM (``trainer.context_parallel=N``), Ulysses-style.

Each of the N ranks of a context-parallel group holds the same (packed) batch and runs the
LLM on one contiguous 1/N of every row's tokens. Around attention, one all-to-all turns
"my tokens, all heads" into "all tokens, my heads", the model's own attention function (SDPA,
eager or flash-attention) runs on the whole sequence for H/N heads with the whole
block-diagonal mask, and a second all-to-all turns it back. Everything else in a decoder layer
(norms, MLP, RoPE with the token's real position) is per token and runs on the local slice.

Why Ulysses and not ring attention: it reuses the exact attention kernel the config names
(including flash-attention's variable-length path for packed rows), needs only all-to-all
(which gloo has, so it is tested on CPU) and its communication per layer is constant in N;
its limit is that N must divide the number of key/value heads.

The loss is the global batch's: every rank knows the whole row's labels, so each computes the
global token weights, sums its slice's weighted cross-entropy and the ranks add their parts
(an all-reduce whose backward is one too). Data-parallel gradient averaging over all
dp x cp processes then gives exactly the single-process gradient.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol

PREFIX = "mmfw_cp_"


@dataclass(frozen=True)
class ContextParallel:
    """The context-parallel group of this rank: its ``size`` ranks share one batch. A group
    of one (``group=None``) runs the same segment-wise attention in one process."""

    group: dist.ProcessGroup | None
    size: int
    rank: int

    def all_to_all(self, x: torch.Tensor) -> torch.Tensor:
        """Send ``x[j]`` to rank j and receive rank j's into ``out[j]`` (dim 0 has ``size``)."""
        if self.group is None:
            return x
        out = funcol.all_to_all_single_autograd(x.contiguous(), None, None, self.group)
        return funcol.wait_tensor(out)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's ``x`` stacked along a new dim 0 (differentiable)."""
        if self.group is None:
            return x.unsqueeze(0)
        out = funcol.all_gather_single_autograd(x.contiguous().unsqueeze(0), 0, self.group)
        return funcol.wait_tensor(out)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """The sum over the group's ranks; its gradient is summed over them too."""
        if self.group is None:
            return x
        return _AllReduceSum.apply(x, self.group)


ONE_PROCESS = ContextParallel(None, 1, 0)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
        ctx.group = group
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


@dataclass
class _Step:
    """What the attention of one forward needs about the whole sequence."""

    cp: ContextParallel
    segments: torch.Tensor  # (B, S): a token attends to earlier tokens of its segment only
    position_ids: torch.Tensor  # (B, S): restart at every packed sample, for flash varlen
    _runs: list | None = None
    _mask: torch.Tensor | None = None

    @property
    def runs(self) -> list[list[tuple[int, int]]]:
        """Per row, the (start, end) of each segment (a packed sample, a row's padding)."""
        if self._runs is None:
            s = self.segments
            change = torch.ones_like(s, dtype=torch.bool)
            change[:, 1:] = s[:, 1:] != s[:, :-1]
            runs = []
            for row in change.cpu():
                starts = row.nonzero().flatten().tolist()
                runs.append(list(zip(starts, [*starts[1:], s.shape[1]], strict=True)))
            self._runs = runs
        return self._runs

    def mask(self, dtype: torch.dtype) -> torch.Tensor:
        """(B, 1, S, S) additive mask, built once per forward, for the eager kernel."""
        if self._mask is None or self._mask.dtype != dtype:
            seg, n = self.segments, self.segments.shape[1]
            causal = torch.ones(n, n, dtype=torch.bool, device=seg.device).tril()
            allowed = (seg[:, :, None] == seg[:, None, :]) & causal
            low = torch.finfo(dtype).min
            self._mask = torch.zeros(allowed.shape, dtype=dtype, device=seg.device)
            self._mask = self._mask.masked_fill(~allowed, low).unsqueeze(1)
        return self._mask


_STEP: contextvars.ContextVar[_Step | None] = contextvars.ContextVar("mmfw_cp_step", default=None)


@contextlib.contextmanager
def sharded_sequence(cp: ContextParallel, segments: torch.Tensor, position_ids: torch.Tensor):
    """Within this block the registered attention functions attend over the whole sequence.

    ``segments`` (B, S): tokens attend causally to earlier tokens of the same segment only
    (a packed sample, a row's padding). SDPA runs causally on each segment (no S x S mask,
    whose float copy per layer would cost more than the split saves); flash-attention gets
    the restarting ``position_ids`` (its variable-length path); eager gets a dense mask."""
    token = _STEP.set(_Step(cp, segments, position_ids))
    try:
        yield
    finally:
        _STEP.reset(token)


def checkpoint_contexts():
    """``context_fn`` for ``torch.utils.checkpoint``: a block recomputed in backward (outside
    :func:`sharded_sequence`) attends over the same whole sequence as its forward did."""
    return contextlib.nullcontext(), _restored(_STEP.get())


@contextlib.contextmanager
def _restored(step: _Step | None):
    token = _STEP.set(step)
    try:
        yield
    finally:
        _STEP.reset(token)


def _heads_to_sequence(x: torch.Tensor, n: int, cp: ContextParallel) -> torch.Tensor:
    """(B, H, S/N, D) on each rank → (B, H/N, S, D): this rank's heads over every token."""
    b, h, s, d = x.shape
    x = x.view(b, n, h // n, s, d).permute(1, 0, 2, 3, 4)  # head group j goes to rank j
    x = cp.all_to_all(x)  # [j] = rank j's tokens of my head group
    return x.permute(1, 2, 0, 3, 4).reshape(b, h // n, n * s, d)


def _sequence_to_heads(x: torch.Tensor, n: int, cp: ContextParallel) -> torch.Tensor:
    """(B, S, H/N, D) → (B, S/N, H, D): back to this rank's tokens with every head."""
    b, s, h, d = x.shape
    x = x.view(b, n, s // n, h, d).permute(1, 0, 2, 3, 4)  # token chunk j goes to rank j
    x = cp.all_to_all(x)  # [j] = my tokens for rank j's head group
    return x.permute(1, 2, 0, 3, 4).reshape(b, s // n, n * h, d)


def _ulysses(base, kind: str):
    """``kind``: flash (takes position ids), sdpa (causal per segment) or eager (a mask)."""

    # Outside torch.compile's graph (trainer.compile): it reads a context variable, loops
    # over the segments and talks to the other ranks.
    @torch.compiler.disable
    def attention(module, query, key, value, attention_mask, **kwargs):
        step = _STEP.get()
        if step is None:  # generation, or a forward without context parallelism
            return base(module, query, key, value, attention_mask, **kwargs)
        cp, n = step.cp, step.cp.size
        q, k, v = (_heads_to_sequence(t, n, cp) for t in (query, key, value))
        if kind == "flash":
            kwargs["position_ids"] = step.position_ids
            for name in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"):
                kwargs.pop(name, None)
            out, _ = base(module, q, k, v, None, **kwargs)
        elif kind == "eager":
            out, _ = base(module, q, k, v, step.mask(q.dtype), **kwargs)
        else:  # sdpa: causal within each segment
            rows = []
            for b, runs in enumerate(step.runs):
                parts = [
                    base(module, *(t[b : b + 1, :, i:j] for t in (q, k, v)), None, **kwargs)[0]
                    for i, j in runs
                ]
                rows.append(torch.cat(parts, dim=1))
            out = torch.cat(rows)
        return _sequence_to_heads(out, n, cp), None

    return attention


def use_context_parallel(llm) -> None:
    """Switch ``llm`` to the context-parallel wrapper of its attention implementation.

    Registered once per name with transformers' attention and mask interfaces; without an
    active :func:`sharded_sequence` the wrapper is the base implementation, mask included."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    base_name = llm.config._attn_implementation
    if base_name.startswith(PREFIX):
        return
    # eager is each model's own function, not a registered one: one name per model family
    name = PREFIX + (f"eager_{llm.config.model_type}" if base_name == "eager" else base_name)
    if name not in AttentionInterface._global_mapping:
        kind = "flash" if base_name.startswith("flash") else base_name
        base = (
            _eager_function(llm)
            if kind == "eager"
            else AttentionInterface._global_mapping.get(base_name)
        )
        if base is None or kind not in ("flash", "sdpa", "eager"):
            raise ValueError(
                f"trainer.context_parallel: the LLM's attention {base_name!r} has no "
                "transformers attention function to wrap; use sdpa, eager or flash_attention_2"
            )
        AttentionInterface.register(name, _ulysses(base, kind))
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base_name])
    llm.config._attn_implementation = name
    for sub in ("text_config",):  # composite configs keep their own copy
        if hasattr(llm.config, sub):
            getattr(llm.config, sub)._attn_implementation = name


def _eager_function(llm):
    """The modeling file's ``eager_attention_forward`` of ``llm`` (None if it has none)."""
    import sys

    for module in llm.modules():
        found = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
        if found is not None:
            return found
    return None


def check_heads(config, size: int) -> None:
    """Ulysses splits the heads over the group: N must divide both head counts."""
    heads = int(getattr(config, "num_attention_heads", 0))
    kv = int(getattr(config, "num_key_value_heads", None) or heads)
    if heads % size or kv % size:
        raise ValueError(
            f"trainer.context_parallel={size} must divide the LLM's attention heads "
            f"({heads}) and key/value heads ({kv}): choose a divisor of {kv}"
        )


def forward_sharded(
    llm,
    cp: ContextParallel,
    embeds: torch.Tensor,
    *,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    position_ids: torch.Tensor | None,
    sample_ids: torch.Tensor | None,
    reduction: str,
    image_mask: torch.Tensor,
    stage_image_mask,
):
    """The LLM forward of one training batch on this rank's 1/N of every row, and the loss
    of the whole batch (the same value on every rank of the group).

    ``embeds`` (B, S, D) is the whole batch with the images fused in; a packed batch brings
    restarting ``position_ids`` and ``sample_ids``, an unpacked one its ``attention_mask``.
    Rows are padded to a multiple of N with tokens that attend only to each other and have
    no target. The returned output holds this rank's logits (B, S', V) and ``loss``."""
    from torch.nn import functional as F

    from mmfw.models.loss import IGNORE, target_weights

    b, s, _ = embeds.shape
    n, dev = cp.size, embeds.device
    if position_ids is None:  # unpacked: one sample per row, padding is its own segment
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        sample_ids = torch.where(attention_mask.bool(), 0, -1)
    elif sample_ids is None:  # a new sample wherever the positions restart (as transformers)
        rows = torch.arange(b, device=dev).unsqueeze(1) * s
        sample_ids = (position_ids == 0).long().cumsum(-1) + rows
    tail = torch.full((b, 1), IGNORE, dtype=labels.dtype, device=dev)
    targets = torch.cat([labels[:, 1:], tail], dim=1)  # position t predicts token t+1
    target_ids = torch.cat([sample_ids[:, 1:], torch.full_like(tail, -2)], dim=1)
    pad = (-s) % n
    if pad:
        steps = torch.arange(1, pad + 1, device=dev).expand(b, pad)
        embeds = F.pad(embeds, (0, 0, 0, pad))
        position_ids = torch.cat([position_ids, position_ids[:, -1:] + steps], dim=1)
        sample_ids = F.pad(sample_ids, (0, pad), value=-2)
        targets = F.pad(targets, (0, pad), value=IGNORE)
        target_ids = F.pad(target_ids, (0, pad), value=-2)
        image_mask = F.pad(image_mask, (0, pad), value=False)
    weights = target_weights(targets, target_ids, reduction)
    chunk = (s + pad) // n
    mine = slice(cp.rank * chunk, (cp.rank + 1) * chunk)
    stage_image_mask(image_mask[:, mine])
    with sharded_sequence(cp, sample_ids, position_ids):
        out = llm(
            inputs_embeds=embeds[:, mine],
            position_ids=position_ids[:, mine],
            attention_mask=None,
            use_cache=False,
        )
    logits = out.logits
    ce = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        targets[:, mine].reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(b, chunk)
    total = weights.sum()
    part = (ce * weights[:, mine]).sum() / total.clamp(min=1e-12)
    out.loss = cp.sum(part)
    return out
