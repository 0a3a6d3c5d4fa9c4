"""Chat templates: a conversation → text segments, each marked as a training target or not."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

IMAGE_PLACEHOLDER = "<image>"


@dataclass
class Turn:
    """One message: ``role`` is ``human`` or ``gpt`` (LLaVA JSON's ``from``)."""

    role: str
    text: str


@dataclass
class Segment:
    """A piece of rendered text; ``target`` marks the tokens the loss is computed on."""

    text: str
    target: bool = False


class ChatTemplate(ABC):
    """Renders conversations for training and prompts for generation.

    ``stop`` is the text that ends an answer (generation is cut there).
    """

    stop: str

    def render(self, turns: list[Turn]) -> list[Segment]:
        """Training text: human/gpt turns alternate, starting with human."""
        check_alternation(turns, ends_with="gpt")
        return self._segments(turns, train=True)

    def prompt(self, turns: list[Turn]) -> list[Segment]:
        """Generation prompt: ``turns`` end with a human turn; the answer is left open."""
        check_alternation(turns, ends_with="human")
        return self._segments(turns, train=False)

    @abstractmethod
    def _segments(self, turns: list[Turn], train: bool) -> list[Segment]:
        """The rendered turns; assistant messages are targets when ``train``."""

    def texts_for_vocabulary(self) -> list[str]:
        """Fixed strings the template adds, so a locally trained tokenizer covers them."""
        return []


def check_alternation(turns: list[Turn], *, ends_with: str) -> None:
    """Raise ValueError unless turns go human, gpt, human, ... and end with ``ends_with``."""
    if not turns:
        raise ValueError("empty conversation")
    for i, turn in enumerate(turns):
        expected = "human" if i % 2 == 0 else "gpt"
        if turn.role != expected:
            raise ValueError(f"turn {i} is from {turn.role!r}, expected {expected!r}")
    if turns[-1].role != ends_with:
        raise ValueError(f"conversation ends with {turns[-1].role!r}, expected {ends_with!r}")
