"""The evaluation protocols on hand-built inputs: CircularEval, VQA normalisation and
accuracy, the distractor builder, MagnifierBench's instruction layout, answer parsing."""

from __future__ import annotations

import pytest
from PIL import Image

from mmfw.data.formats.parquet_bench import split_instruction
from mmfw.data.formats.vlmeval_tsv import MCQuestion
from mmfw.eval.benchmarks.magnifierbench import mentions
from mmfw.eval.protocols import distractor
from mmfw.eval.protocols.circular import circular_accuracy, passes, rotate, rotated_answer
from mmfw.eval.protocols.multiple_choice import parse_choice
from mmfw.eval.protocols.open_ended import (
    exact_match,
    normalize_answer,
    reference_answers,
    vqa_accuracy,
)


def test_rotations_move_the_texts_and_track_the_answer():
    opts = {"A": "cat", "B": "dog", "C": "cow", "D": "pig"}
    assert [rotate(opts, k)["A"] for k in range(4)] == ["cat", "dog", "cow", "pig"]
    assert rotate(opts, 1) == {"A": "dog", "B": "cow", "C": "pig", "D": "cat"}
    for k in range(4):
        assert rotate(opts, k)[rotated_answer(opts, "B", k)] == "dog"
    assert passes({"A": "x", "B": "y"}, True) == [0, 1]
    assert passes({"A": "x", "B": "y", "C": "z"}, True) == [0, 1, 2]
    assert passes(opts, False) == [0]


def test_one_wrong_rotation_makes_the_question_wrong():
    rows = [{"index": "q1", "pass": k, "correct": True} for k in range(4)]
    rows += [{"index": "q2", "pass": k, "correct": k != 2} for k in range(4)]
    rows += [{"index": "q3", "pass": k, "correct": True} for k in range(2)]
    rows += [{"index": "q4", "pass": 0, "correct": None}]  # no answer: not scored
    acc, n = circular_accuracy(rows)
    assert (acc, n) == (2 / 3, 3)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        # From the official VQA evaluation script's rules
        ("Two", "2"), ("none", "0"), ("ten", "10"), ("the cat", "cat"), ("A dog", "dog"),
        ("an apple", "apple"), ("yes.", "yes"), ("3.5", "3.5"), ("1,000", "1000"),
        ("dont", "don't"), ("isnt", "isn't"), ("youre", "you're"), ("shouldnt've", "shouldn't've"),
        ("hello-world", "hello world"), ("x - ray", "x ray"), ("red, white", "red white"),
        ("left!", "left"), ("(left)", "left"), ("dog's", "dog's"), ("  Yes  ", "yes"),
        ("two\ndogs", "2 dogs"), ("ok ?", "ok"), ("A/B", "b"), ("well", "well"),
        ("shell", "shell"), ("Im", "im"),
    ],
)  # fmt: skip
def test_vqa_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match_and_vqa_accuracy():
    refs = ["two", "2", "2", "two dogs", "3"]
    assert reference_answers("a|b| |c") == ["a", "b", "c"]
    assert reference_answers(["x", "y"]) == ["x", "y"]
    assert exact_match("Two.", refs) and not exact_match("4", refs)
    assert vqa_accuracy("2", refs) == 1.0  # "two", "2", "2" all normalise to 2
    assert vqa_accuracy("3", refs) == pytest.approx(1 / 3)
    assert vqa_accuracy("2 dogs", refs) == pytest.approx(1 / 3)
    assert vqa_accuracy("cat", refs) == 0.0


def _questions(n: int) -> list[MCQuestion]:
    return [
        MCQuestion(
            str(i), f"q{i}?", {"A": "x", "B": "y"}, "A", [Image.new("RGB", (4, 4), (i, 0, 0))]
        )
        for i in range(n)
    ]


def test_distractor_samples_count_place_and_repeat():
    qs = _questions(6)
    for n in (1, 3, 5, 9):  # 9 > 5 other images: drawn with repetition
        samples = distractor.build(qs, n, seed=7)
        assert len(samples) == 6
        for s in samples:
            assert len(s.images) == n and 1 <= s.target <= n
            assert s.images[s.target - 1] is s.question.images[0]
            assert s.text.count("<image>") == n and f"In Image {s.target}, " in s.text
            others = [img for i, img in enumerate(s.images) if i != s.target - 1]
            assert all(img is not s.question.images[0] for img in others)
    again = distractor.build(qs, 5, seed=7)
    first = distractor.build(qs, 5, seed=7)
    assert [s.target for s in again] == [s.target for s in first]
    assert [[id(i) for i in s.images] for s in again] == [[id(i) for i in s.images] for s in first]
    other_seed = distractor.build(qs, 5, seed=8)
    assert [s.target for s in other_seed] != [s.target for s in first] or [
        [id(i) for i in s.images] for s in other_seed
    ] != [[id(i) for i in s.images] for s in first]
    targets = {s.target for n in (5,) for s in distractor.build(_questions(40), n, 0)}
    assert len(targets) > 2  # the target position varies


def test_magnifierbench_instruction_and_open_judge():
    q, opts = split_instruction(
        "What is the color of the mug? A. red, B. light blue, C. green, D. white"
    )
    assert q == "What is the color of the mug?"
    assert opts == {"A": "red", "B": "light blue", "C": "green", "D": "white"}
    assert mentions("It is light blue.", "light blue") and mentions("Red", "red")
    assert not mentions("blue-ish", "light blue") and not mentions("reddish", "red")


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is (C)", "C"), ("Option B: green", "B"), ("**D**", "D"),
        ("Answer: B. green", "B"), ("the answer is a", "other"), ("BC", "other"),
        ("I would say red", "A"), ("green or dark blue", "D"),
    ],
)  # fmt: skip
def test_parse_tricky_responses(text, letter):
    assert parse_choice(text, {"A": "red", "B": "green", "C": "blue", "D": "dark blue"}) == letter
