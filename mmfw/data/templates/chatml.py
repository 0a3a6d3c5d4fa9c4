"""Role-tagged templates of the ChatML family (Qwen2, mPLUG-Owl3; InternLM2 with its tags)."""

from __future__ import annotations

from mmfw.data.templates.base import ChatTemplate, Segment, Turn


class ChatMLTemplate(ChatTemplate):
    """``{start}system\\n{system}{end}\\n{start}user\\n{q}{end}\\n{start}assistant\\n{a}{end}\\n``.

    Yaml keys:
      system: the system prompt (empty: no system block).
      start, end: the role tags (Qwen2: ``<|im_start|>`` / ``<|im_end|>``; InternLM2:
        ``[UNUSED_TOKEN_146]`` / ``[UNUSED_TOKEN_145]``).
      user, assistant: role names.
    Loss falls on the assistant messages and their closing ``end`` tag.
    """

    def __init__(
        self,
        *,
        system: str = "You are a helpful assistant.",
        start: str = "<|im_start|>",
        end: str = "<|im_end|>",
        user: str = "user",
        assistant: str = "assistant",
    ) -> None:
        self.system, self.start, self.end = system, start, end
        self.user, self.assistant = user, assistant
        self.stop = end

    def _head(self) -> list[Segment]:
        return [Segment(f"{self.start}system\n{self.system}{self.end}\n")] if self.system else []

    def _user(self, text: str) -> Segment:
        return Segment(f"{self.start}{self.user}\n{text}{self.end}\n{self.start}{self.assistant}\n")

    def _segments(self, turns: list[Turn], train: bool) -> list[Segment]:
        segments = self._head()
        for turn in turns:
            if turn.role == "human":
                segments.append(self._user(turn.text))
            else:
                segments += [Segment(f"{turn.text}{self.end}", target=train), Segment("\n")]
        return segments

    def texts_for_vocabulary(self) -> list[str]:
        return [self.system, self.start, self.end, f"{self.user}\n", f"{self.assistant}\n"]
