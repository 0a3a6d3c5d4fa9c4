"""Chat templates render exactly LLaVA's strings."""

from __future__ import annotations

import pytest

from mmfw.data.templates.base import Turn
from mmfw.data.templates.plain import PlainTemplate
from mmfw.data.templates.separator import SeparatorTemplate

SYSTEM = "A chat between a curious user and an artificial intelligence assistant."


def vicuna() -> SeparatorTemplate:
    return SeparatorTemplate(
        system=SYSTEM, user="USER", assistant="ASSISTANT", sep=" ", sep2="</s>"
    )


def test_vicuna_v1_multi_turn_string_and_targets():
    turns = [
        Turn("human", "<image>\nQ1"),
        Turn("gpt", "A1"),
        Turn("human", "Q2"),
        Turn("gpt", "A2"),
    ]
    segs = vicuna().render(turns)
    # LLaVA conv_vicuna_v1.get_prompt()
    assert (
        "".join(s.text for s in segs)
        == f"{SYSTEM} USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT: A2</s>"
    )
    assert [s.text for s in segs if s.target] == [" A1</s>", " A2</s>"]


def test_vicuna_prompt_leaves_the_answer_open():
    segs = vicuna().prompt([Turn("human", "<image>\nQ")])
    assert "".join(s.text for s in segs) == f"{SYSTEM} USER: <image>\nQ ASSISTANT:"
    assert not any(s.target for s in segs)


def test_plain_is_image_then_caption():
    segs = PlainTemplate(sep="\n").render(
        [Turn("human", "describe <image> please"), Turn("gpt", "a cat")]
    )
    assert [(s.text, s.target) for s in segs] == [("<image>", False), ("a cat\n", True)]
    with pytest.raises(ValueError, match="image"):
        PlainTemplate().render([Turn("human", "hi"), Turn("gpt", "there")])


def test_bad_alternation_is_rejected():
    with pytest.raises(ValueError, match="turn 1"):
        vicuna().render([Turn("human", "a"), Turn("human", "b")])


def test_chatml_string_and_targets():
    from mmfw.data.templates.chatml import ChatMLTemplate

    segs = ChatMLTemplate(system="S").render([Turn("human", "<image>\nQ"), Turn("gpt", "A")])
    text = "".join(s.text for s in segs)
    assert (
        text
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<image>\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    )
    assert [s.text for s in segs if s.target] == ["A<|im_end|>"]
    prompt = "".join(s.text for s in ChatMLTemplate(system="S").prompt([Turn("human", "Q")]))
    assert prompt.endswith("<|im_start|>assistant\n")
