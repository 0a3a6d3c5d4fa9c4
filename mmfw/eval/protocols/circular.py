"""MMBench's CircularEval: an N-option question asked N times with the options circularly
shifted (ABCD, BCDA, CDAB, DABC); it counts as correct only if every pass is right."""

from __future__ import annotations

from collections import defaultdict

from mmfw.eval.protocols.multiple_choice import LETTERS


def rotate(options: dict[str, str], shift: int) -> dict[str, str]:
    """Pass ``shift`` of a question: the letters stay, the texts move up by ``shift``
    (shift 1 of A=x, B=y, C=z is A=y, B=z, C=x)."""
    texts = list(options.values())
    n = len(texts)
    return {LETTERS[i]: texts[(i + shift) % n] for i in range(n)}


def rotated_answer(options: dict[str, str], answer: str, shift: int) -> str:
    """The letter of the original ``answer``'s text in pass ``shift``."""
    letters = list(options)
    n = len(letters)
    return LETTERS[(letters.index(answer) - shift) % n]


def passes(options: dict[str, str], circular: bool) -> list[int]:
    """The shifts a question is asked with: every rotation with CircularEval, else only 0."""
    return list(range(len(options))) if circular else [0]


def circular_accuracy(rows: list[dict]) -> tuple[float, int]:
    """Share of questions whose every pass is correct, over the questions with an answer;
    ``rows`` are prediction rows with ``index``, ``pass`` and ``correct``."""
    by_question: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        if row.get("correct") is not None:
            by_question[str(row["index"])].append(bool(row["correct"]))
    if not by_question:
        return 0.0, 0
    right = sum(all(v) for v in by_question.values())
    return right / len(by_question), len(by_question)
