"""Record formats: LLaVA conversations, ShareGPT/OpenAI messages, video; LLaVA's rules."""

from __future__ import annotations

import pytest

from mmfw.data.formats.llava_json import RecordError, parse_record


def test_a_leading_assistant_turn_is_dropped_not_the_record():
    rec = parse_record(
        {
            "id": "s",
            "conversations": [
                {"from": "gpt", "value": "Hi! How can I help?"},
                {"from": "human", "value": "What is 2+2?"},
                {"from": "gpt", "value": "4"},
            ],
        }  # fmt: skip
    )
    assert [t.role for t in rec.turns] == ["human", "gpt"] and rec.turns[1].text == "4"


def test_messages_with_content_parts_become_turns_and_placeholders():
    rec = parse_record(
        {
            "id": "m1",
            "images": ["a.png", "b.png"],
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {
                    "role": "user",
                    "content": [
                        {"type": "image"},
                        {"type": "text", "text": "and"},
                        {"type": "image"},
                        {"type": "text", "text": "Which is red?"},
                    ],
                },
                {"role": "assistant", "content": "The first."},
                {"role": "user", "content": "Sure?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
            ],
        }  # fmt: skip
    )
    assert rec.images == ["a.png", "b.png"]
    assert rec.turns[0].text == "<image>\nand\n<image>\nWhich is red?"
    assert [t.role for t in rec.turns] == ["human", "gpt", "human", "gpt"]


def test_image_parts_may_name_their_files():
    rec = parse_record(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "image": "x.jpg"}, {"type": "text", "text": "q"}],
                },
                {"role": "assistant", "content": "a"},
            ]
        }  # fmt: skip
    )
    assert rec.images == ["x.jpg"] and rec.turns[0].text.startswith("<image>")


def test_video_records_take_one_placeholder():
    rec = parse_record({"video": "clip.mp4", "conversations": [{"from": "human", "value": "<image>\nWhat happens?"},
                                                                {"from": "gpt", "value": "A ball rolls."}]})  # fmt: skip
    assert rec.video == "clip.mp4" and rec.turns[0].text == "<video>\nWhat happens?"
    rec = parse_record({"video": "frames/", "conversations": [{"from": "human", "value": "Describe."},
                                                               {"from": "gpt", "value": "x"}]})  # fmt: skip
    assert rec.turns[0].text == "<video>\nDescribe."


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            {
                "messages": [
                    {"role": "narrator", "content": "x"},
                    {"role": "assistant", "content": "y"},
                ]
            },
            "bad_role",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "audio"}]},
                    {"role": "assistant", "content": "y"},
                ]
            },
            "bad_turn",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "<image> q"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "placeholder_mismatch",
        ),
        (
            {
                "video": "v.mp4",
                "conversations": [
                    {"from": "human", "value": "<image><image> q"},
                    {"from": "gpt", "value": "a"},
                ],
            },
            "placeholder_mismatch",
        ),
        (
            {
                "video": "v.mp4",
                "image": "a.png",
                "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
            },
            "placeholder_mismatch",
        ),
        ({"messages": [{"role": "assistant", "content": "only me"}]}, "no_conversations"),
    ],
)
def test_bad_records_name_their_reason(raw, reason):
    with pytest.raises(RecordError) as err:
        parse_record(raw)
    assert err.value.reason == reason
