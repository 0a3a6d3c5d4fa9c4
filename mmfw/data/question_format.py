"""How questions and answers are written down, shared by the training data (synthetic tasks,
benchmark files read as training sources) and the evaluation protocols above it: option
letters, LLaVA's multiple-choice prompt, and a row's reference answers."""

from __future__ import annotations

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


def reference_answers(answer) -> list[str]:
    """A row's reference answers: a list, or a string with ``|``-separated alternatives."""
    if answer is None:
        return []
    if isinstance(answer, (list, tuple)):
        return [str(a) for a in answer if str(a).strip()]
    return [a for a in str(answer).split("|") if a.strip()]
