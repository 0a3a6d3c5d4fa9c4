"""Ordinary LoRA through peft, on the LLM and the encoder."""

from __future__ import annotations

from tests.helpers import tiny_components

LORA = [
    "+stage.adapters.lora._target_=mmfw.models.adapters.lora.LoRA",
    "+stage.adapters.lora.r=4",
    "+stage.adapters.lora.targets=[q_proj,v_proj]",
    "+stage.adapters.lora.modules=[llm,encoder]",
]


def test_lora_layers_are_injected_in_place(tmp_path):
    _, parts = tiny_components(tmp_path, *LORA)
    names = parts.model.adapter_params
    assert any(n.startswith("llm.") and "lora_A" in n for n in names)
    assert any(n.startswith("encoder.") and "lora_B" in n for n in names)
    assert {n for n, _ in parts.model.named_parameters()} >= names
