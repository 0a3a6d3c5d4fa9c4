"""Open a finished run: its resolved config, tokenizer and model with the checkpoint's weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mmfw.build import build_components, load_run_tokenizer
from mmfw.data.processor import SampleProcessor
from mmfw.models.vlm import VisionLanguageModel
from mmfw.run_dir.checkpoints import (
    checkpoint_step,
    model_state,
    read_checkpoint,
    run_status,
    run_weights,
    unreadable,
    weights_to_evaluate,
)
from mmfw.run_dir.safetensors_io import INDEX, WEIGHTS, load_state


@dataclass
class LoadedRun:
    config: DictConfig
    model: VisionLanguageModel
    processor: SampleProcessor
    checkpoint: Path


def checkpoint_path(run_dir: Path, ckpt: str) -> Path:
    """``ckpt=last``: the run's ``checkpoints/last.ckpt``, or the safetensors weights of a
    ``mmfw-export format=mmfw`` folder; else the path given."""
    path = run_weights(run_dir, ckpt)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist (ckpt=last or a .ckpt path)")
    problem = unreadable(path)
    if problem:
        raise PermissionError(problem)
    return path


@dataclass
class EvalTarget:
    """What ``mmfw-eval`` evaluates: the checkpoint, its step and the run's status then."""

    checkpoint: Path
    step: int | None
    run_status: str | None

    @property
    def live(self) -> bool:
        return self.run_status == "running"

    def provenance(self) -> dict:
        return {
            "checkpoint": str(self.checkpoint),
            "step": self.step,
            "run_status": self.run_status,
        }


def eval_target(run_dir: Path, ckpt: str) -> EvalTarget:
    """``ckpt=last`` of a live run (run.json says running) is its newest intact checkpoint:
    its last.ckpt may not exist yet or be replaced while it is read."""
    status = run_status(run_dir)
    path = weights_to_evaluate(run_dir, ckpt)
    if status != "running":
        path = checkpoint_path(run_dir, ckpt)  # exists and readable, or a clear error
    step = None if path.name in (WEIGHTS, INDEX) else checkpoint_step(path)
    return EvalTarget(path, step, status)


def read_weights(path: Path) -> dict:
    """The model's state dict from a checkpoint (any layout) or exported safetensors."""
    if path.name in (WEIGHTS, INDEX):
        return load_state(path.parent)
    # Any layout: a file, or a DeepSpeed / FSDP2 sharded folder (consolidated on the CPU).
    return model_state(read_checkpoint(path))


def load_run(
    run_dir: str | Path, ckpt: str = "last", device: str = "cpu", resolution: dict | None = None
) -> LoadedRun:
    """Rebuild the run's model from its resolved config and load the weights strictly.

    ``resolution`` replaces keys of the run's resolution strategy for this use only (e.g.
    ``{"eval_size": 1024}``: OtterHD evaluated above its training sizes); unknown keys are an
    error, and keys that change the model's parameters fail the strict weight load."""
    run_dir = Path(run_dir)
    config_file = run_dir / ".hydra" / "config.yaml"
    if not config_file.exists():
        raise FileNotFoundError(f"{config_file} is missing: {run_dir} is not an mmfw run directory")
    cfg = OmegaConf.load(config_file)
    if isinstance(cfg.encoder.get("pretrained"), DictConfig):
        # A pretraining recipe only initialises the tower: the checkpoint holds its weights.
        cfg.encoder.pretrained = None
    if resolution:
        unknown = sorted(set(resolution) - set(cfg.resolution))
        if unknown:
            raise ValueError(
                f"resolution has no key {', '.join(unknown)} in this run "
                f"({cfg.resolution.get('_target_')}); its keys: {', '.join(sorted(cfg.resolution))}"
            )
        cfg.resolution = OmegaConf.merge(cfg.resolution, resolution)
    parts = build_components(cfg, load_run_tokenizer(run_dir))
    path = checkpoint_path(run_dir, ckpt)
    parts.model.load_state_dict(read_weights(path), strict=True)
    parts.model.to(device).eval()
    return LoadedRun(cfg, parts.model, parts.processor, path)
