"""Export a run to transformers' LLaVA formats or mmfw's own, and read llava-hf checkpoints back."""
