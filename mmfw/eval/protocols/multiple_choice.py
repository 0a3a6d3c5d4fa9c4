"""Multiple-choice prompts (LLaVA's MMBench format) and answer-letter parsing."""

from __future__ import annotations

import re

LETTERS = "ABCDEFGH"
MC_SUFFIX = "Answer with the option's letter from the given choices directly."


def format_multiple_choice(
    question: str, options: list[str], *, hint: str | None = None, suffix: str = MC_SUFFIX
) -> str:
    """``[hint\\n]question\\nA. opt\\nB. opt...\\n{suffix}`` (LLaVA's MMBench prompt)."""
    lines = [hint] if hint else []
    lines.append(question)
    lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    if suffix:
        lines.append(suffix)
    return "\n".join(lines)


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
