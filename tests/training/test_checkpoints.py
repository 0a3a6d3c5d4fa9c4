"""Checkpoint files: atomic writes survive a kill mid-write; resume picks the newest intact one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mmfw.run_dir.checkpoints import atomic_torch_save, is_intact, newest_intact

WRITER = """
import sys, torch
from mmfw.run_dir.checkpoints import atomic_torch_save
atomic_torch_save({"w": torch.ones(150_000_000)}, __import__("pathlib").Path(sys.argv[1]))
"""


def test_a_kill_during_the_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"step": 1}, path)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 1_000_000 for p in tmp_path.glob(".last.ckpt.tmp-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the writer never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list(tmp_path.glob(".last.ckpt.tmp-*"))  # the half-written file, under another name
    assert is_intact(path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    atomic_torch_save({"step": 2}, path)  # the next save clears the leftover
    assert not list(tmp_path.glob(".last.ckpt.tmp-*"))
    assert torch.load(path, weights_only=True) == {"step": 2}


def test_truncated_and_foreign_files_are_not_intact(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"x": torch.zeros(1000)}, good)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint")
    assert is_intact(good) and not is_intact(bad) and not is_intact(text)


def test_newest_intact_skips_a_damaged_last_ckpt_with_a_warning(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for i, name in enumerate(["step000002.ckpt", "step000004.ckpt", "last.ckpt"]):
        torch.save({"step": i}, folder / name)
        os.utime(folder / name, (100 + i, 100 + i))
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])
    os.utime(last, (200, 200))
    with pytest.warns(
        UserWarning, match="last.ckpt is incomplete or corrupt; resuming from .*step000004"
    ):
        assert newest_intact(tmp_path) == folder / "step000004.ckpt"
    assert newest_intact(tmp_path / "empty") is None
    for p in folder.iterdir():
        p.write_bytes(b"junk")
    with pytest.raises(FileNotFoundError, match="every checkpoint .* is incomplete"):
        newest_intact(tmp_path)
