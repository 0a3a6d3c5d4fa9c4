"""The lazy record index: the same records as json.load, built once, bounded memory."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from mmfw.data import record_index
from mmfw.data.formats.llava_json import RecordError
from mmfw.data.record_index import IndexedRecords


def records(n: int) -> list[dict]:
    tricky = 'quote " brace } bracket ] comma , backslash \\ émoji 🙂 中文 \n newline'
    out = []
    for i in range(n):
        r = {"id": f"r{i}", "conversations": [{"from": "human", "value": f"<image>\n{tricky} {i}"},
                                               {"from": "gpt", "value": "x" * (i % 50)}]}  # fmt: skip
        if i % 3 == 0:
            r["image"] = f"img/{i}.png"
        elif i % 3 == 1:
            r["image"] = [f"a{i}.png", f"b{i}.png"]
        else:
            r["video"] = f"v{i}.mp4"
        out.append(r)
    return out


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFW_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("layout", ["json", "json_pretty", "jsonl"])
def test_index_reads_what_json_load_reads(tmp_path, monkeypatch, layout):
    monkeypatch.setattr(record_index, "CHUNK", 97)  # records straddle many chunk borders
    recs = records(200)
    path = tmp_path / f"data.{'jsonl' if layout == 'jsonl' else 'json'}"
    if layout == "jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in recs) + "\n\n")
    else:
        path.write_text(
            json.dumps(recs, ensure_ascii=False, indent=2 if "pretty" in layout else None)
        )
    lazy = IndexedRecords(path)
    assert len(lazy) == 200
    assert list(lazy) == recs
    assert lazy[-1] == recs[-1] and lazy[5:8] == recs[5:8]
    chars, images = lazy.estimates()
    assert images.tolist()[:3] == [1, 2, -1]
    assert chars[0] == sum(len(t["value"].encode()) for t in recs[0]["conversations"])
    clone = pickle.loads(pickle.dumps(lazy))  # what a spawned worker receives
    assert clone[17] == recs[17]


def test_index_is_built_once_and_rebuilt_when_the_file_changes(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(records(10)))
    first = IndexedRecords(path)
    stamp = (first.index_dir / "start.npy").stat().st_mtime_ns
    assert IndexedRecords(path).index_dir == first.index_dir
    assert (first.index_dir / "start.npy").stat().st_mtime_ns == stamp
    path.write_text(json.dumps(records(12)))
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert len(IndexedRecords(path)) == 12
    assert len(IndexedRecords(path, limit=5)) == 5


def test_broken_files_name_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"id": 1},\n{"id": 2,,}\n]')
    with pytest.raises(ValueError, match=r"broken.json: invalid JSON at line 3"):
        IndexedRecords(path)
    path.write_text('[{"id": 1}, {"id": 2}')
    with pytest.raises(ValueError, match="invalid JSON"):
        IndexedRecords(tmp_path / "broken.json")
    (tmp_path / "obj.json").write_text('{"id": 1}')
    with pytest.raises(ValueError, match="expected a JSON list"):
        IndexedRecords(tmp_path / "obj.json")


def test_a_bad_jsonl_line_is_one_bad_record(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1}\n{"id": oops}\n{"id": 3}\n')
    lazy = IndexedRecords(path)
    assert len(lazy) == 3 and lazy[2] == {"id": 3}
    with pytest.raises(RecordError) as e:
        lazy[1]
    assert e.value.reason == "bad_json"
