"""Ordinary LoRA on the LLM and/or the encoder, through peft."""

from __future__ import annotations

from peft import LoraConfig, inject_adapter_in_model


class LoRA:
    """peft LoRA layers injected in place (the module tree keeps its names).

    Yaml keys:
      r, alpha, dropout: LoRA rank, scale numerator, dropout.
      targets: module names to adapt (e.g. q_proj, k_proj, v_proj, o_proj, gate_proj,
        up_proj, down_proj for Llama/Qwen2).
      modules: which parts get adapters: llm and/or encoder.
    """

    def __init__(
        self,
        *,
        r: int = 128,
        alpha: float = 256.0,
        dropout: float = 0.05,
        targets: list[str],
        modules: list[str] | None = None,
    ) -> None:
        self.modules = list(modules or ["llm"])
        for m in self.modules:
            if m not in ("llm", "encoder"):
                raise ValueError(f"LoRA modules entry {m!r}: use llm and/or encoder")
        self.config = LoraConfig(
            r=int(r),
            lora_alpha=float(alpha),
            lora_dropout=float(dropout),
            target_modules=list(targets),
        )

    def apply(self, model) -> list[str]:
        names = []
        for part in self.modules:
            inject_adapter_in_model(self.config, getattr(model, part))
            names += [
                f"{part}.{n}" for n, _ in getattr(model, part).named_parameters() if "lora_" in n
            ]
        if not names:
            raise ValueError(
                f"LoRA targets {list(self.config.target_modules)} match nothing in {self.modules}"
            )
        return names
