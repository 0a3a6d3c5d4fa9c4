"""Multiple-choice prompt format and letter parsing."""

from __future__ import annotations

import pytest

from mmfw.eval.protocols.multiple_choice import format_multiple_choice, parse_choice

OPTS = {"A": "red", "B": "green", "C": "blue", "D": "dark blue"}


def test_llava_mmbench_prompt():
    text = format_multiple_choice("Which?", ["x", "y"], hint="Look.")
    assert (
        text
        == "Look.\nWhich?\nA. x\nB. y\nAnswer with the option's letter from the given choices directly."
    )


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("C.", "C"),
        ("(D) dark blue", "D"),
        ("I think the answer is C because", "C"),
        ("The answer is: B", "B"),
        ("it is green", "B"),
        ("dark blue for sure", "D"),
        ("no idea", "other"),
        ("", "other"),
    ],
)
def test_parse_choice(text, letter):
    assert parse_choice(text, OPTS) == letter
