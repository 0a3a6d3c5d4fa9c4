"""Checkpoints on disk: atomic writes, finding the newest intact one, and reading any layout
(single file, DeepSpeed ZeRO folder, FSDP2 distributed folder) as one consolidated state dict."""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from mmfw.errors import UserError

# torch is imported inside the functions that need it: checking a checkpoint's integrity is
# part of config validation, which must answer in well under a second.


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, I/O error, permissions); the previous
    file under that name is untouched."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary name in the same folder, fsync, rename over ``path``: a kill at any
    moment leaves the old file or the new one, never half of one. The file gets the mode any
    other file would (0666 less the umask), not the temporary file's 0600."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise _write_error(path, e) from e
    except RuntimeError as e:  # torch.save reports a failed write as a RuntimeError
        raise _write_error(path, e) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_error(path: Path, e: BaseException) -> CheckpointWriteError:
    reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
    if path.exists():
        kept = f"{path} still holds the previous checkpoint"
    else:
        intact = [p for p in sorted(path.parent.glob("*.ckpt"), key=_mtime) if is_intact(p)]
        kept = f"the newest intact checkpoint is {intact[-1]}" if intact else "no checkpoint yet"
    return CheckpointWriteError(
        f"writing checkpoint {path} failed: {reason}; {kept} (the write goes to a temporary "
        "file that is renamed only when complete). Free space on that disk or check it, then "
        "resume=auto continues from the newest intact checkpoint",
        getattr(e, "errno", None),
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def layout(path: Path) -> str:
    """``file`` | ``deepspeed`` | ``distributed`` (FSDP2 / torch.distributed.checkpoint)."""
    if path.is_dir():
        if (path / "latest").exists() or (path / "checkpoint").is_dir():
            return "deepspeed"
        return "distributed"
    return "file"


def is_intact(path: Path) -> bool:
    """Whether a checkpoint was written completely (cheap: no tensor is read)."""
    try:
        kind = layout(path)
        if kind == "file":
            with zipfile.ZipFile(path) as z:  # torch.save files are zip archives
                return any(n.endswith("data.pkl") for n in z.namelist())
        if kind == "deepspeed":
            tag = (path / "latest").read_text().strip()
            return any((path / tag).glob("*model_states.pt"))
        return (path / ".metadata").exists() and (path / "meta.pt").exists()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def unreadable(path: Path) -> str | None:
    """Why this process cannot read a checkpoint (permissions), or None when it can."""
    files = [path] if path.is_file() else [path, *(p for p in path.rglob("*"))]
    for f in files:
        if not os.access(f, os.R_OK | (os.X_OK if f.is_dir() else 0)):
            st = f.stat()
            return (
                f"{f} is not readable by this user (permission denied: mode "
                f"{oct(st.st_mode & 0o777)}, owner uid {st.st_uid}). Ask the run's owner to make "
                "it readable (chmod -R g+rX, or train with a umask such as 002 on shared runs)"
            )
    return None


def resume_candidates(run_dir: Path) -> list[Path]:
    """The run's checkpoints, newest first: last.ckpt, periodic step checkpoints and the
    SLURM pre-emption saves Lightning writes (hpc_ckpt_N.ckpt)."""
    folder = run_dir / "checkpoints"
    paths = [*folder.glob("*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    return sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True)


def newest_intact(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run; says which damaged ones it passed over."""
    skipped = []
    for path in resume_candidates(run_dir):
        problem = unreadable(path)
        if problem:
            raise PermissionError(problem)
        if is_intact(path):
            if skipped:
                warnings.warn(
                    f"resume=auto: {', '.join(map(str, skipped))} is incomplete or corrupt; "
                    f"resuming from {path} instead",
                    stacklevel=2,
                )
            return path
        skipped.append(path)
    if skipped:
        raise FileNotFoundError(
            f"resume=auto: every checkpoint of {run_dir} is incomplete or corrupt "
            f"({', '.join(map(str, skipped))}); pass resume=<a .ckpt path> or start a new run"
        )
    return None


def run_weights(run_dir: Path, ckpt: str) -> Path:
    """The weights ``ckpt`` names in ``run_dir`` (the path may not exist): ``last`` is
    ``checkpoints/last.ckpt``, or the safetensors of an ``mmfw-export format=mmfw`` folder
    that has no checkpoints; anything else is a checkpoint path."""
    from mmfw.run_dir.safetensors_io import INDEX, WEIGHTS, has_state

    if ckpt != "last":
        return Path(ckpt)
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.exists() or not has_state(run_dir):
        return last
    return run_dir / (WEIGHTS if (run_dir / WEIGHTS).exists() else INDEX)


def run_status(run_dir: Path) -> str | None:
    """run.json's status (running / finished / failed / interrupted), None without one."""
    import json

    try:
        return json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def weights_to_evaluate(run_dir: Path, ckpt: str) -> Path:
    """What ``ckpt`` means for an evaluation: for a live run (run.json says running)
    ``last`` is the newest intact checkpoint, since last.ckpt may be missing or replaced
    while it is read; else :func:`run_weights`."""
    if ckpt == "last" and run_status(run_dir) == "running":
        found = newest_intact(run_dir)
        if found is None:
            raise FileNotFoundError(
                f"{run_dir} is running and has no checkpoint yet: evaluate it after its first "
                "save (checkpoint.every_n_train_steps) or when it ends"
            )
        return found
    return run_weights(run_dir, ckpt)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``{"state_dict": {LightningModule key: tensor}, "mmfw_config": ..., "global_step": ...}``
    from any checkpoint layout, gathered on the CPU."""
    import torch

    kind = layout(path)
    if kind == "file":
        return torch.load(path, map_location="cpu", weights_only=True)
    if kind == "deepspeed":
        return _read_deepspeed(path)
    return _read_distributed(path)


def _read_deepspeed(path: Path) -> dict[str, Any]:
    import torch
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    tag = (path / "latest").read_text().strip()
    state = get_fp32_state_dict_from_zero_checkpoint(str(path), tag=tag)
    client = torch.load(
        next((path / tag).glob("*model_states.pt")), map_location="cpu", weights_only=False
    )
    prefix = "_forward_module."
    out = {k: v for k, v in client.items() if k not in ("module", "optimizer", "lr_scheduler")}
    out["state_dict"] = {
        k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()
    }
    return out


def _read_distributed(path: Path) -> dict[str, Any]:
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "full.pt"
        dcp_to_torch_save(path, out)
        full = torch.load(out, map_location="cpu", weights_only=True)
    meta = torch.load(path / "meta.pt", map_location="cpu", weights_only=True)
    return {**meta, "state_dict": full["state_dict"]}


def checkpoint_step(path: Path) -> int:
    """The ``global_step`` a checkpoint was saved at (no tensor is read)."""
    import torch

    kind = layout(path)
    if kind == "file":
        meta = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    elif kind == "deepspeed":
        tag = (path / "latest").read_text().strip()
        meta = torch.load(
            next((path / tag).glob("*model_states.pt")), map_location="cpu", weights_only=False
        )
    else:
        meta = torch.load(path / "meta.pt", map_location="cpu", weights_only=True)
    return int(meta.get("global_step", 0))


def model_state(checkpoint: dict[str, Any]) -> dict:
    """The VisionLanguageModel's own weights (the LightningModule keys without ``model.``)."""
    prefix = "model."
    return {
        k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)
    }


def consolidate(path: Path, out: Path) -> Path:
    """Write one ``.ckpt`` file (weights, config, step) from a sharded checkpoint folder."""
    full = read_checkpoint(path)
    keep = {
        k: v for k, v in full.items() if k in ("state_dict", "mmfw_config", "global_step", "epoch")
    }
    atomic_torch_save(keep, out)
    return out
