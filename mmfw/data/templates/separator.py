"""Templates of the "system, ROLE: message, separators" family (LLaVA's vicuna_v1 and kin)."""

from __future__ import annotations

from mmfw.data.templates.base import ChatTemplate, Segment, Turn


class SeparatorTemplate(ChatTemplate):
    """``{system}{sep}{user}: {q}{sep}{assistant}: {a}{sep2}{user}: ...``.

    Yaml keys:
      system: the system prompt (empty for none).
      user, assistant: role names.
      sep: after the system prompt and after each user message.
      sep2: after each assistant message; it is part of the target (for vicuna_v1 it is
        ``</s>``, the EOS token, so the model learns to stop).
    Loss falls only on the assistant messages and their ``sep2``.
    """

    def __init__(
        self,
        *,
        system: str,
        user: str = "USER",
        assistant: str = "ASSISTANT",
        sep: str = " ",
        sep2: str = "</s>",
    ) -> None:
        self.system = system
        self.user = user
        self.assistant = assistant
        self.sep = sep
        self.sep2 = sep2
        self.stop = sep2

    def _head(self) -> str:
        return f"{self.system}{self.sep}" if self.system else ""

    def _segments(self, turns: list[Turn], train: bool) -> list[Segment]:
        segments = [Segment(self._head())]
        for turn in turns:
            if turn.role == "human":
                segments.append(Segment(f"{self.user}: {turn.text}{self.sep}{self.assistant}:"))
            else:
                segments.append(Segment(f" {turn.text}{self.sep2}", target=train))
        return segments

    def texts_for_vocabulary(self) -> list[str]:
        return [self.system, f"{self.user}: ", f"{self.assistant}:"]
