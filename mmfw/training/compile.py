"""``trainer.compile``: torch.compile of the model's repeated blocks, in place.

Regional compilation (each LLM decoder layer and vision encoder block on its own, as
transformers' and torchtitan's recipes do): the blocks of a stack share one compiled graph, so
compile time does not grow with depth, and everything between them (image fusion, the loss,
the context-parallel all-to-alls, which run outside the graph) stays eager. ``Module.compile``
keeps parameter names, so checkpoints of compiled and eager runs are interchangeable.
Shapes: torch's automatic dynamic shapes (a block is compiled for the first shape and once
more with the changing dimensions symbolic); with ``data.fixed_rows`` and ``data.fixed_views``
every step has the same shapes and the first compilation is the only one."""

from __future__ import annotations

from torch import nn

from mmfw.models.blocks import transformer_blocks


def compile_blocks(model: nn.Module) -> int:
    """Compile every transformer block of ``model`` in place; the number compiled."""
    blocks = transformer_blocks(model)
    for block in blocks:
        block.compile()
    return len(blocks)
