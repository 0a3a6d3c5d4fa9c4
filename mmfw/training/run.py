"""One training run: build from the config, fit, evaluate the listed benchmarks, write metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mmfw.build import build_components, build_tokenizer
from mmfw.eval.runner import evaluate_benchmark
from mmfw.training.callbacks import RunStats, SaveOnException
from mmfw.training.module import VLMModule


def resolve_resume(resume: str | None, run_dir: Path) -> str | None:
    """``auto`` → the run's ``last.ckpt`` if it exists (else a fresh start); a path → itself."""
    if not resume:
        return None
    if resume == "auto":
        last = run_dir / "checkpoints" / "last.ckpt"
        return str(last) if last.exists() else None
    if not Path(resume).exists():
        raise FileNotFoundError(
            f"resume={resume!r}: no such checkpoint (use resume=auto or a .ckpt path)"
        )
    return resume


def save_resolved_config(cfg: DictConfig, run_dir: Path) -> dict:
    """Overwrite ``.hydra/config.yaml`` with the resolved config (the run-dir contract)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(resolved), run_dir / ".hydra" / "config.yaml")
    return resolved


def train(cfg: DictConfig, run_dir: str | Path, group: str | None = None) -> dict:
    """Fit the model the config describes in ``run_dir``; returns the final metrics."""
    run_dir = Path(run_dir)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    resolved = save_resolved_config(cfg, run_dir)

    datamodule = instantiate(cfg.data)
    tokenizer = build_tokenizer(cfg, run_dir / "tokenizer", datamodule.texts)
    parts = build_components(cfg, tokenizer)
    datamodule.attach(parts.processor)
    module = VLMModule(parts.model, instantiate(cfg.stage), instantiate(cfg.optim), resolved)

    run_name = f"{cfg.name}/{run_dir.name}"
    loggers = [
        instantiate(node)(save_dir=str(run_dir), run_name=run_name, group=group)
        for node in cfg.logger.values()
    ]
    stats = RunStats()
    checkpoint = instantiate(cfg.checkpoint, dirpath=str(run_dir / "checkpoints"))
    trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=[checkpoint, stats, SaveOnException(str(run_dir / "checkpoints" / "last.ckpt"))],
        default_root_dir=str(run_dir),
    )
    for lg in loggers:
        lg.log_hyperparams(resolved)

    try:
        return _fit_and_evaluate(cfg, run_dir, trainer, module, datamodule, parts, loggers, stats)
    finally:
        _finish_wandb()


def _fit_and_evaluate(cfg, run_dir, trainer, module, datamodule, parts, loggers, stats) -> dict:
    """Fit, save the final state, evaluate the benchmarks, write metrics.json."""
    t0 = time.perf_counter()
    trainer.fit(
        module,
        datamodule=datamodule,
        ckpt_path=resolve_resume(cfg.resume, run_dir),
        weights_only=True,  # resume never unpickles arbitrary objects
    )
    # A run that stops between periodic saves still leaves its full final state in last.ckpt.
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    fit_seconds = time.perf_counter() - t0

    metrics: dict = {"step": int(trainer.global_step), "time/fit_s": round(fit_seconds, 2)}
    for key, value in trainer.callback_metrics.items():
        if key.endswith(("loss", "loss_epoch")):
            metrics[key] = float(value)
    metrics["train/tokens_per_s"] = round(stats.mean_tokens_per_s, 1)
    metrics["data/skipped"] = dict(stats.skipped)

    if trainer.is_global_zero and cfg.evaluate.at_end:
        for name, bench_cfg in (cfg.get("benchmarks") or {}).items():
            result = evaluate_benchmark(
                name, instantiate(bench_cfg), module.model, parts.processor, run_dir
            )
            metrics[f"{name}/accuracy"] = result["accuracy"]
            metrics[f"{name}/chance"] = result["chance"]
        for lg in loggers:
            lg.log_metrics(
                {k: v for k, v in metrics.items() if "/" in k and isinstance(v, float)},
                step=trainer.global_step,
            )
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for lg in loggers:
        lg.finalize("success")
    return metrics


def _finish_wandb() -> None:
    """Close the wandb run so the next job of a sweep (same process) starts a new one."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
