"""Model FLOPs of a training step, from the architecture (for MFU).

Counted per part (vision encoder, connector, LLM) so MFU is reported with and without the
encoder. Conventions (PaLM appendix B, as most 2025 trainers report MFU):
- a weight matrix of W parameters applied to T tokens costs 2·W·T in forward; the backward
  pass costs 2·W·T more for the input gradient (when anything upstream trains) and 2·W·T
  for the weight gradient (when the weight trains) — so a fully trained part costs 6·W·T;
- attention scores and values cost 4·s²·d per layer and sequence in forward (the full
  square, causal masking not subtracted), twice that again in backward when gradients
  flow through;
- a frozen encoder with nothing trainable below it runs forward only;
- only real tokens count (padding is wasted work, not model FLOPs); recomputation from
  activation checkpointing is not model FLOPs either.
The connector is counted as its weights applied to its output tokens (exact for linear and
MLP projectors, an approximation for the resampler and C-Abstractor, which are tiny).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Matmuls:
    """Weight parameters per token of a part, split by whether they train; ``inputs`` are
    the weights that read raw pixels (a patch embedding), whose input needs no gradient."""

    trainable: int
    frozen: int
    inputs: int = 0

    @classmethod
    def of(cls, module: nn.Module | None, pixel_convs: bool = False) -> Matmuls:
        trainable = frozen = inputs = 0
        if module is not None:
            for m in module.modules():
                if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
                    n = _numel(m.weight)
                    if m.weight.requires_grad:
                        trainable += n
                    else:
                        frozen += n
                    if pixel_convs and isinstance(m, nn.Conv2d):
                        inputs += n
        return cls(trainable, frozen, inputs)

    def flops(self, tokens: float, input_grad: bool) -> float:
        weights = self.trainable + self.frozen
        grads = weights - self.inputs if input_grad else 0
        return 2.0 * tokens * (weights + grads + self.trainable)


def _numel(p: torch.Tensor) -> int:
    return int(getattr(p, "ds_numel", p.numel()))


def _trains(module: nn.Module | None) -> bool:
    return module is not None and any(p.requires_grad for p in module.parameters())


class StepFlops:
    """FLOPs of one micro-batch, from its shapes: ``flops(batch) -> {"encoder", "connector",
    "llm"}``. Built once from the model (after the stage has frozen what it freezes)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        encoder, connector, llm = model.encoder, model.connector, model.llm
        self.enc = Matmuls.of(encoder, pixel_convs=True)
        self.conn = Matmuls.of(connector)
        # Fusion weights inside the LLM (hyper attention) are LLM matmuls here.
        self.llm = Matmuls.of(llm)
        self.enc_grad = _trains(encoder)
        self.conn_grad = self.enc_grad or _trains(connector)
        self.llm_grad = self.conn_grad or _trains(llm) or _trains(model.fusion)
        cfg = llm.config
        heads = int(cfg.num_attention_heads)
        head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
        self.llm_layers = int(cfg.num_hidden_layers)
        self.llm_width = heads * head_dim
        enc_config = getattr(getattr(encoder, "model", None), "config", None)
        self.enc_layers = int(
            getattr(enc_config, "num_hidden_layers", 0)
            or len(getattr(getattr(encoder, "model", None), "blocks", []))
        )
        self.enc_width = int(getattr(encoder, "out_dim", 0))
        self.enc_cls = 1 if getattr(encoder, "has_cls", False) else 0
        self.patch = int(encoder.patch_size)

    def __call__(self, batch: dict) -> dict[str, float]:
        mask = batch["attention_mask"]
        lengths = mask.sum(dim=1).double()
        if batch.get("sample_ids") is not None:  # packed: attention stays inside each sample
            ids = batch["sample_ids"]
            lengths = torch.bincount(ids[ids >= 0].flatten()).double()
        tokens = float(lengths.sum())
        attn = 4.0 * self.llm_layers * self.llm_width * float((lengths**2).sum())
        llm = self.llm.flops(tokens, self.llm_grad) + attn * (3.0 if self.llm_grad else 1.0)
        encoder = connector = 0.0
        grid = self.model.feature_grid
        for views in batch.get("images") or []:
            n, _, h, w = views.shape
            per_view = (h // self.patch) * (w // self.patch) + self.enc_cls
            enc_attn = 4.0 * self.enc_layers * self.enc_width * per_view**2 * n
            encoder += self.enc.flops(n * per_view, self.enc_grad) + enc_attn * (
                3.0 if self.enc_grad else 1.0
            )
            fh, fw = grid((h, w))
            connector += self.conn.flops(n * fh * fw, self.conn_grad)
        return {"encoder": encoder, "connector": connector, "llm": llm}
