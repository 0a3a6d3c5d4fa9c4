"""One training run: build from the config, fit, evaluate the listed benchmarks, write metrics."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from mmfw.build import build_components, build_model, build_tokenizer
from mmfw.errors import UserError, summary
from mmfw.eval.runner import evaluate_benchmark
from mmfw.eval.scores import is_score
from mmfw.training.atomic_io import AtomicCheckpointIO
from mmfw.training.callbacks import GracefulStop, RunStats, SaveOnException, StepSeeds
from mmfw.training.checkpoints import checkpoint_step, newest_intact
from mmfw.training.distributed import (
    clear_launch_env,
    is_rank_zero,
    launch_local_ranks,
    launched_externally,
    wait_for_children,
    watch_parent,
)
from mmfw.training.init_from import resolve_source
from mmfw.training.init_from_hf import source as hf_source
from mmfw.training.init_from_hf import with_hf_architecture
from mmfw.training.module import VLMModule, format_groups
from mmfw.training.preemption import Preemption
from mmfw.training.run_record import RunRecord
from mmfw.training.trainer import TrainerSpec


def resolve_resume(resume: str | None, run_dir: Path) -> str | None:
    """``auto`` → the run's newest intact checkpoint (else a fresh start); a path → itself."""
    if not resume:
        return None
    if resume == "auto":
        found = newest_intact(run_dir)
        return str(found) if found else None
    if not Path(resume).exists():
        raise FileNotFoundError(
            f"resume={resume!r}: no such checkpoint (use resume=auto or a .ckpt path)"
        )
    return resume


def inherited_tokenizer(init_from: str | None) -> Path | None:
    """A stage that starts from another run's weights keeps that run's tokenizer: its
    embedding rows mean that tokenizer's tokens."""
    if not init_from:
        return None
    folder = resolve_source(init_from).parent.parent / "tokenizer"
    return folder if (folder / "tokenizer_config.json").exists() else None


def save_resolved_config(cfg: DictConfig, run_dir: Path) -> dict:
    """Overwrite ``.hydra/config.yaml`` with the resolved config (the run-dir contract)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if is_rank_zero():
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(resolved), run_dir / ".hydra" / "config.yaml")
    return resolved


def _sum_over_ranks(counts: dict[str, int]) -> dict[str, int]:
    """Per-reason counts summed over the ranks (each rank skips its own records)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return counts
    every: list = [None] * dist.get_world_size()
    dist.all_gather_object(every, counts)
    total: dict[str, int] = {}
    for part in every:
        for reason, n in part.items():
            total[reason] = total.get(reason, 0) + int(n)
    return total


def train(
    cfg: DictConfig,
    run_dir: str | Path,
    group: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Fit the model the config describes in ``run_dir``; returns the final metrics.

    With ``trainer.devices > 1`` and no external launcher (torchrun, SLURM), this process
    becomes local rank 0 and starts the other local ranks as ``mmfw-train`` children running
    the same job (``overrides`` are the job's own Hydra overrides).
    """
    run_dir = Path(run_dir)
    spec: TrainerSpec = instantiate(cfg.trainer)
    plan = spec.batch_plan(int(cfg.data.batch_size), cfg.data.get("global_batch_size"))
    record = RunRecord(run_dir)
    children = []
    if spec.processes_per_node > 1 and not launched_externally():
        children = launch_local_ranks(
            spec.processes_per_node, spec.num_nodes, run_dir, list(overrides or [])
        )
    watch_parent()
    if spec.accelerator == "cpu" and spec.processes_per_node > 1:
        # Ranks on one CPU share its cores (as torchrun's OMP_NUM_THREADS does), instead of
        # each starting a thread per core and oversubscribing them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // spec.processes_per_node))
    previous = record.read()
    # A resumed run keeps its wandb run id (kept in run.json), so wandb continues its history.
    run_id = previous.get("wandb_id") if cfg.resume and previous.get("wandb_id") else _new_id()
    if is_rank_zero():
        record.start(list(overrides or []), plan.world, wandb_id=run_id)
    exit_code = 1  # what wandb records unless training returns: failed runs never read finished
    try:
        metrics = _train(cfg, run_dir, group, spec, plan, run_id, list(overrides or []))
        exit_code = 0
    except SIGTERMException as e:
        if is_rank_zero():
            record.finish("interrupted", error="stopped by a signal; resume=auto continues")
        raise SystemExit(143) from e  # 128 + SIGTERM: never mistaken for a finished run
    except BaseException as e:
        if is_rank_zero():
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            record.finish(status, error=summary(e))
        raise
    finally:
        _finish_wandb(exit_code)
        _leave_process_group()
    if is_rank_zero():
        record.finish("finished", step=metrics.get("step"))
    wait_for_children(children)
    clear_launch_env()
    return metrics


def _new_id() -> str:
    """A wandb-compatible run id (lowercase letters and digits)."""
    import secrets

    return secrets.token_hex(4)


def _train(
    cfg: DictConfig,
    run_dir: Path,
    group,
    spec: TrainerSpec,
    plan,
    run_id: str,
    overrides: list[str] | None = None,
) -> dict:
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    # The saved config then rebuilds the checkpoint's architecture without the source.
    cfg = with_hf_architecture(cfg)
    resolved = save_resolved_config(cfg, run_dir)

    datamodule = instantiate(cfg.data)
    tokenizer = build_tokenizer(
        cfg,
        run_dir / "tokenizer",
        datamodule.texts,
        inherited_tokenizer(cfg.stage.get("init_from")),
    )
    parts = build_components(cfg, tokenizer, meta=True)  # the real model: configure_model()
    datamodule.attach(parts.processor)
    datamodule.probe()  # a source that yields nothing stops here, before step 1
    image_token_id = tokenizer.convert_tokens_to_ids(cfg.tokenizer.image_token)

    def build():
        return build_model(cfg, parts.strategy, len(tokenizer), image_token_id)

    module = VLMModule(
        build,
        instantiate(cfg.stage),
        instantiate(cfg.optim),
        resolved,
        strategy=spec.strategy,
        precision=spec.precision,
        activation_checkpointing=spec.activation_checkpointing,
        loss_reduction=str(cfg.data.get("loss_reduction", "token")),
        init_from_hf=hf_source(cfg),
    )

    ckpt_path = resolve_resume(cfg.resume, run_dir)
    resume_step = checkpoint_step(Path(ckpt_path)) if ckpt_path else None
    if ckpt_path:
        print(f"mmfw: resuming from {ckpt_path} (step {resume_step})")
    elif cfg.resume == "auto":
        print(f"mmfw: resume=auto: {run_dir} has no checkpoint yet; starting from step 0")
    run_name = f"{cfg.name}/{run_dir.name}"
    loggers = [
        instantiate(node)(
            save_dir=str(run_dir),
            run_name=run_name,
            group=group,
            run_id=run_id,
            resume_step=resume_step,
            **(
                {"overrides": overrides}
                if str(node.get("_target_", "")).endswith("wandb_logger")
                else {}
            ),
        )
        for node in cfg.logger.values()
    ]
    configured = datamodule.configured_fractions()
    stats = RunStats(
        peak_tflops=spec.peak_tflops,
        max_skipped_fraction=datamodule.max_skipped_fraction,
        record=RunRecord(run_dir),
        sources={n: (src.category, configured[n]) for n, src in datamodule.sources.items()},
        image_token_id=parts.processor.image_token_id,
    )
    checkpoint = instantiate(cfg.checkpoint, dirpath=str(run_dir / "checkpoints"))
    callbacks = [
        checkpoint,
        stats,
        StepSeeds(int(cfg.seed)),
        GracefulStop(),
        SaveOnException(str(run_dir / "checkpoints" / "last.ckpt")),
        ReportSetup(run_dir, plan),
        RecordProgress(RunRecord(run_dir)),
    ]
    in_training = in_training_eval(cfg, parts.processor, spec)
    if in_training is not None:
        callbacks.append(in_training)
    trainer = spec.build(
        plan,
        logger=loggers or False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir),
    )
    for lg in loggers:
        lg.log_hyperparams({**resolved, "overrides": list(overrides or [])})

    preemption = Preemption(requeue=spec.requeue_on_preemption)
    preemption.install()
    t0 = time.perf_counter()
    try:
        trainer.fit(
            module,
            datamodule=datamodule,
            ckpt_path=ckpt_path,
            weights_only=True,  # resume never unpickles arbitrary objects
        )
    except SIGTERMException:
        print(f"mmfw: {preemption.requeue(trainer.is_global_zero)}")
        raise
    finally:
        preemption.restore()
        spec.strategy.release()
    # A run that stops between periodic saves still leaves its full final state in last.ckpt.
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    fit_seconds = time.perf_counter() - t0

    metrics: dict = {"step": int(trainer.global_step), "time/fit_s": round(fit_seconds, 2)}
    for key, value in trainer.callback_metrics.items():
        if key.endswith(("loss", "loss_epoch")):
            metrics[key] = float(value)
    metrics.update(stats.summary(trainer.world_size))
    params = list(module.model.parameters())
    # ZeRO-3 keeps a parameter's full size in ds_numel; DTensors (FSDP2) report the global one.
    metrics["params/total"] = sum(int(getattr(p, "ds_numel", p.numel())) for p in params)
    metrics["params/trainable"] = sum(
        int(getattr(p, "ds_numel", p.numel())) for p in params if p.requires_grad
    )
    skipped = _sum_over_ranks(dict(stats.skipped))
    metrics["data/skipped"] = skipped  # reason → records, the whole mapping
    metrics.update({f"data/skipped/{reason}": n for reason, n in sorted(skipped.items())})
    counts = torch.tensor(stats.drawn, dtype=torch.float64, device=trainer.strategy.root_device)
    drawn = trainer.strategy.reduce(counts, reduce_op="sum")
    metrics.update(stats.mixture([int(x) for x in drawn.tolist()]))
    if not stats.samples and trainer.global_step == 0:
        raise UserError(
            "no training sample was usable: every record was skipped (see data/skipped)"
        )
    metrics["batch/global"] = plan.global_batch
    metrics["batch/micro"] = plan.micro_batch
    metrics["batch/accumulate"] = plan.accumulate
    metrics["batch/devices"] = plan.world

    if trainer.is_global_zero:
        # Written before any evaluation: a benchmark that fails cannot lose the training's numbers.
        write_metrics(run_dir, metrics)
        if cfg.evaluate.at_end and cfg.get("benchmarks"):
            evaluated = evaluate_at_end(cfg, run_dir, module, parts, spec)
            metrics.update(evaluated)
            write_metrics(run_dir, metrics)
            for lg in loggers:
                lg.log_metrics(
                    {k: v for k, v in evaluated.items() if isinstance(v, float)},
                    step=trainer.global_step,
                )
    for lg in loggers:
        lg.finalize("success")
    return metrics


def write_metrics(run_dir: Path, metrics: dict) -> None:
    tmp = run_dir / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, run_dir / "metrics.json")


def in_training_eval(cfg: DictConfig, processor, spec: TrainerSpec):
    """The in-training evaluation callback, when ``evaluate.every_n_steps`` is set."""
    from mmfw.training.in_training_eval import InTrainingEval

    every = cfg.evaluate.get("every_n_steps")
    if not every or not cfg.get("benchmarks"):
        return None
    benchmarks = {}
    for name, node in cfg.benchmarks.items():
        bench = instantiate(node)
        if cfg.evaluate.get("max_samples"):
            bench.max_samples = int(cfg.evaluate.max_samples)
        benchmarks[name] = bench
    return InTrainingEval(
        benchmarks,
        processor,
        int(every),
        table_rows=int(cfg.evaluate.get("table_rows", 8)),
        synced=spec.strategy.shards_parameters,
    )


def evaluate_at_end(cfg: DictConfig, run_dir: Path, module, parts, spec: TrainerSpec) -> dict:
    """Every entry of ``benchmarks``; one that fails is reported (``<name>/error`` in
    metrics.json, ``eval_errors`` in run.json) and the others still run."""
    import sys

    out: dict = {}
    errors: dict[str, str] = {}
    try:
        model, processor = module.model, parts.processor
        if spec.strategy.shards_parameters:
            # No rank holds the whole model: evaluate the consolidated checkpoint instead.
            from mmfw.runs import load_run

            run = load_run(run_dir)
            model, processor = run.model, run.processor
    except Exception as e:  # noqa: BLE001 - reported below, training results stay
        errors = {name: f"{type(e).__name__}: {e}" for name in cfg.benchmarks}
    for name, bench_cfg in cfg.benchmarks.items():
        if name in errors:
            continue
        try:
            result = evaluate_benchmark(name, instantiate(bench_cfg), model, processor, run_dir)
        except Exception as e:  # noqa: BLE001 - one benchmark's failure is not the run's
            errors[name] = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            continue
        for key, value in result.items():
            if is_score(key) and isinstance(value, float):
                out[f"{name}/{key}"] = value
        if result.get("answers") == "none":
            out[f"{name}/answers"] = "none"
    for name, error in errors.items():
        out[f"{name}/error"] = error
        print(f"mmfw-train: warning: benchmark {name} failed: {error}", file=sys.stderr)
    if errors:
        RunRecord(run_dir).update(eval_errors=errors)
    return out


class RecordProgress(L.Callback):
    """Keeps run.json current: the step of the newest checkpoint and when it was written."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.is_global_zero:
            self.record.update(
                step=int(trainer.global_step), checkpoint_time=time.strftime("%Y-%m-%dT%H:%M:%S%z")
            )


class ReportSetup(L.Callback):
    """Once at the start: prints the batch layout and the optimizer groups (module → params →
    lr → weight decay) and writes them to ``<run dir>/optimizer_groups.json``."""

    def __init__(self, run_dir: Path, plan) -> None:
        self.run_dir = run_dir
        self.plan = plan

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        p = self.plan
        print(
            f"mmfw: global batch {p.global_batch} = micro-batch {p.micro_batch} x "
            f"accumulation {p.accumulate} x {p.world} device(s)"
        )
        if pl_module.init_info:
            info = pl_module.init_info
            source = (
                "model.init_from_hf" if info.get("kind") == "init_from_hf" else "stage.init_from"
            )
            print(
                f"mmfw: {source} loaded {info['tensors']} tensors from {info['path']} (sha256 {info['sha256']})"
            )
        rows = getattr(pl_module, "param_group_table", [])
        print(format_groups(rows))
        payload = {"batch": p.__dict__ | {"global_batch": p.global_batch}, "groups": rows}
        if pl_module.init_info:
            payload["init_from"] = pl_module.init_info
        (self.run_dir / "optimizer_groups.json").write_text(json.dumps(payload, indent=2))


def _leave_process_group() -> None:
    """The next job of a sweep (same process) starts its own ranks and process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _finish_wandb(exit_code: int = 0) -> None:
    """Close the wandb run so the next job of a sweep (same process) starts a new one; a
    non-zero ``exit_code`` marks it failed in wandb."""
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
