"""Lightning's CheckpointIO with atomic writes (see ``checkpoints.atomic_torch_save``)."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.plugins.io import TorchCheckpointIO

from mmfw.run_dir.checkpoints import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary name in the same folder, fsyncs it, then renames it
    over the target: a kill at any moment leaves either the old or the new file, never half
    of one (the temporary file of an interrupted write is removed on the next save)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_torch_save(checkpoint, Path(path))
