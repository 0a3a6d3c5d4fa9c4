"""Multiple-choice prompts (LLaVA's MMBench format) and answer-letter parsing."""

from __future__ import annotations

import re

# Written down in mmfw.data (the training data uses them too); part of this protocol.
from mmfw.data.question_format import LETTERS, MC_SUFFIX, format_multiple_choice  # noqa: F401


def parse_choice(text: str, options: dict[str, str]) -> str:
    """The option letter a free-form answer names, or ``"other"``.

    Order (as MagnifierBench): "The answer is X" → the first standalone option letter →
    an option's text contained in the answer (the longest if several) → "other".
    """
    letters = "".join(options)
    m = re.search(rf"[Tt]he answer is:?\s*\(?([{letters}])\b", text)
    if m:
        return m.group(1)
    m = re.search(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", text)
    if m:
        return m.group(1)
    lowered = text.lower()
    hits = [k for k, v in options.items() if v and str(v).lower() in lowered]
    if hits:
        return max(hits, key=lambda k: len(str(options[k])))
    return "other"
