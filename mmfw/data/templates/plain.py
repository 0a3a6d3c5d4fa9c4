"""LLaVA's ``plain`` template for alignment: the image, then the caption (no question)."""

from __future__ import annotations

from mmfw.data.templates.base import (
    IMAGE_PLACEHOLDER,
    ChatTemplate,
    Segment,
    Turn,
)


class PlainTemplate(ChatTemplate):
    """``<image>{caption}{sep}``: the human turn is reduced to its image placeholders.

    Yaml keys:
      sep: ends the caption (LLaVA uses a newline); part of the target.
    Only single-exchange conversations with an image are valid.
    """

    def __init__(self, *, sep: str = "\n") -> None:
        self.sep = sep
        self.stop = sep

    @staticmethod
    def _images(turn: Turn) -> str:
        n = turn.text.count(IMAGE_PLACEHOLDER)
        if n == 0:
            raise ValueError("the plain template needs an image in the human turn")
        return IMAGE_PLACEHOLDER * n

    def _segments(self, turns: list[Turn], train: bool) -> list[Segment]:
        if train and len(turns) != 2:
            raise ValueError(f"the plain template takes one exchange, got {len(turns)} turns")
        if not train:
            return [Segment(self._images(turns[-1]))]
        return [Segment(self._images(turns[0])), Segment(turns[1].text + self.sep, target=True)]
