"""The repeated blocks of a model (LLM decoder layers, vision encoder blocks)."""

from __future__ import annotations

from torch import nn


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The classes every Hugging Face model inside ``model`` lists in ``_no_split_modules``,
    and timm's ``Block``s; outermost matches only (a block never holds another one)."""
    names: set[str] = {"Block", "ResPostBlock"}
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    inner = {id(c) for b in blocks for c in b.modules() if c is not b}
    return [b for b in blocks if id(b) not in inner]
