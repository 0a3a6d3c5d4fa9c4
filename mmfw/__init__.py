"""mmfw: declarative experiments for multimodal LLMs."""

from mmfw.config import compose

__all__ = ["compose"]
__version__ = "0.1.0"
