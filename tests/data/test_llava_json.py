"""LLaVA JSON records: the format's variants and its bad records."""

from __future__ import annotations

import json

import pytest

from mmfw.data.formats.llava_json import RecordError, parse_record, read_json_records


def conv(*pairs):
    out = []
    for q, a in pairs:
        out += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return out


def test_text_only_multi_turn_record():
    r = parse_record({"id": 1, "conversations": conv(("hi", "hello"), ("how?", "fine"))})
    assert r.images == [] and [t.role for t in r.turns] == ["human", "gpt", "human", "gpt"]


def test_placeholder_anywhere_in_first_turn_is_kept():
    r = parse_record(
        {
            "id": "a",
            "image": "x.jpg",
            "conversations": conv(("What is this <image> thing?", "a cat")),
        }
    )
    assert r.turns[0].text == "What is this <image> thing?" and r.images == ["x.jpg"]


def test_missing_placeholder_is_inserted_first():
    r = parse_record({"id": "a", "image": "x.jpg", "conversations": conv(("What is it?", "a cat"))})
    assert r.turns[0].text == "<image>\nWhat is it?"


def test_multi_image_list():
    r = parse_record(
        {"image": ["a.jpg", "b.jpg"], "conversations": conv(("<image> vs <image>?", "same"))}
    )
    assert r.images == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"id": 1}, "no_conversations"),
        (
            {"conversations": [{"from": "robot", "value": "x"}, {"from": "gpt", "value": "y"}]},
            "bad_role",
        ),
        ({"conversations": conv(("q", "a"))[:1]}, "no_answer"),
        (
            {"image": "a.jpg", "conversations": conv(("<image><image>", "a"))},
            "placeholder_mismatch",
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "q"},
                    {"from": "human", "value": "q"},
                    {"from": "gpt", "value": "a"},
                ]
            },
            "bad_alternation",
        ),
        ("just a string", "not_an_object"),
    ],
)
def test_bad_records_have_reasons(raw, reason):
    with pytest.raises(RecordError) as err:
        parse_record(raw)
    assert err.value.reason == reason


def test_json_and_jsonl_files(tmp_path):
    recs = [{"id": i, "conversations": conv(("q", "a"))} for i in range(3)]
    (tmp_path / "a.json").write_text(json.dumps(recs))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    assert read_json_records(tmp_path / "a.json") == read_json_records(tmp_path / "a.jsonl") == recs
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_json_records(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="data.sources"):
        read_json_records(tmp_path / "nope.json")
