"""Which sequence positions hold image tokens, for modules deep inside the LLM (Partial LoRA)."""

from __future__ import annotations

import torch
from torch import nn


class ImagePositions:
    """The image-token mask of the LLM forward that is running now.

    The model stages the mask of its next LLM call with :meth:`stage`; a forward pre-hook on
    the LLM makes it current for exactly that call. Later calls without a staged mask (the
    decode steps of generation, which only add text tokens) see ``None``.
    """

    def __init__(self) -> None:
        self.current: torch.Tensor | None = None
        self._staged: torch.Tensor | None = None
        self._hooked = False

    def stage(self, mask: torch.Tensor) -> None:
        self._staged = mask

    def attach(self, llm: nn.Module) -> None:
        if not self._hooked:
            llm.register_forward_pre_hook(self._on_llm_call)
            self._hooked = True

    def _on_llm_call(self, module, args) -> None:
        self.current, self._staged = self._staged, None

    def mask_for(self, x: torch.Tensor) -> torch.Tensor | None:
        """(…, L, 1) float mask matching ``x`` (…, L, C), or None when no image positions apply."""
        m = self.current
        if m is None or tuple(m.shape) != tuple(x.shape[:-1]):
            return None
        return m.unsqueeze(-1).to(x.dtype)
