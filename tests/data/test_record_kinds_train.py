"""A multi-image, a video-file, a frames-folder and a ShareGPT `messages` record each train
through the tiny model (strict mode: any unusable record would stop the run)."""

from __future__ import annotations

import json
import shutil

import numpy as np
from hydra.utils import instantiate
from PIL import Image

import mmfw
from mmfw.data.synthetic.source import ensure_generated
from mmfw.training.run import train
from tests.conftest import SMALL_TASK


def write_video(path, frames):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for frame in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")
            ):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_every_record_kind_trains(tmp_path):
    cfg = mmfw.compose(["experiment=tiny_llava", *SMALL_TASK])
    root = ensure_generated(instantiate(cfg.synthetic), str(tmp_path / "cache"))
    pngs = sorted((root / "images" / "train").glob("*.png"))[:12]
    frames = [Image.open(p).convert("RGB") for p in pngs]
    write_video(tmp_path / "clip.mp4", frames)
    (tmp_path / "frames").mkdir()
    for i, p in enumerate(pngs[:10]):
        shutil.copy(p, tmp_path / "frames" / f"frame_{i}.png")
    rel = [str(p.relative_to(tmp_path)) if p.is_relative_to(tmp_path) else str(p) for p in pngs]
    records = [
        {"id": "multi", "image": [rel[0], rel[1]],
         "conversations": [{"from": "human", "value": "<image> and <image>: which is bigger?"},
                           {"from": "gpt", "value": "The first."}]},
        {"id": "video", "video": "clip.mp4",
         "conversations": [{"from": "human", "value": "<video>\nWhat changes?"},
                           {"from": "gpt", "value": "The colours."}]},
        {"id": "frames", "video": "frames",
         "conversations": [{"from": "human", "value": "Describe the clip."}, {"from": "gpt", "value": "Squares."}]},
        {"id": "messages", "images": [rel[2]],
         "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "red"}]}]},
        {"id": "text", "conversations": [{"from": "gpt", "value": "Hello!"}, {"from": "human", "value": "2+2?"},
                                         {"from": "gpt", "value": "4"}]},
    ]  # fmt: skip
    data = tmp_path / "kinds.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records))
    run_cfg = mmfw.compose(
        [
            "experiment=tiny_llava",
            *SMALL_TASK,
            "data=llava_json",
            f"data.sources.main.path={data}",
            f"data.sources.main.image_root={tmp_path}",
            "data.strict=true",
            "data.batch_size=5",
            "data.num_workers=0",
            "data.video_frames=4",
            "logger=csv",
            "trainer.max_steps=3",
            "evaluate.at_end=false",
            "trainer.enable_progress_bar=false",
        ]  # fmt: skip
    )
    metrics = train(run_cfg, tmp_path / "run")
    assert metrics["step"] == 3 and metrics["data/skipped"] == {}
    # 3 steps x 5 records: every record was drawn and used.
    assert metrics["train/samples_per_s"] > 0


def test_frames_are_sampled_uniformly(tmp_path):
    from mmfw.data.formats.llava_json import RecordError
    from mmfw.data.video import sample_frames, uniform_indices

    assert uniform_indices(16, 4) == [2, 6, 10, 14] and uniform_indices(3, 8) == [0, 1, 2]
    colours = [Image.new("RGB", (64, 64), (i * 16, 0, 0)) for i in range(16)]
    write_video(tmp_path / "v.mp4", colours)
    frames = sample_frames("v.mp4", tmp_path, 4)
    reds = [np.asarray(f)[32, 32, 0] for f in frames]
    assert len(frames) == 4 and all(abs(int(r) - 16 * i) <= 8 for r, i in zip(reds, (2, 6, 10, 14)))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    try:
        sample_frames("broken.mp4", tmp_path, 4)
    except RecordError as e:
        assert e.reason == "bad_video"
    else:
        raise AssertionError("an undecodable video must be a bad_video record")
