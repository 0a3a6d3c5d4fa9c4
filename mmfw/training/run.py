"""One training run: build from the config, fit, evaluate the listed benchmarks, write metrics."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import time
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from mmfw.build import build_components, build_model, build_tokenizer
from mmfw.errors import UserError, summary
from mmfw.eval.runner import evaluate_benchmark
from mmfw.eval.scores import is_score
from mmfw.run_dir.checkpoints import checkpoint_step, newest_intact
from mmfw.run_dir.files import write_json
from mmfw.run_dir.record import RunRecord
from mmfw.training.atomic_io import AtomicCheckpointIO
from mmfw.training.callbacks import (
    DataStats,
    ThroughputStats,
)
from mmfw.training.distributed import is_rank_zero, launched_externally, watch_parent
from mmfw.training.init_from import resolve_source
from mmfw.training.init_from_hf import source as hf_source
from mmfw.training.init_from_hf import with_hf_architecture
from mmfw.training.module import VLMModule
from mmfw.training.numerics import NonFiniteError, NumericsGuard
from mmfw.training.preemption import Preemption
from mmfw.training.run_compat import check_resumable, resolved
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


def _sum_over_ranks(counts: dict[str, int], share: int = 1) -> dict[str, int]:
    """Per-reason counts summed over the ranks (each rank skips its own records); ``share``
    ranks (a context-parallel group) saw the same records."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return counts
    every: list = [None] * dist.get_world_size()
    dist.all_gather_object(every, counts)
    total: dict[str, int] = {}
    for part in every:
        for reason, n in part.items():
            total[reason] = total.get(reason, 0) + int(n)
    return {reason: n // share for reason, n in total.items()}


def train(
    cfg: DictConfig,
    run_dir: str | Path,
    group: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Fit the model the config describes in ``run_dir``; returns the final metrics.

    This process is one rank. Several local ranks are started by ``mmfw-train`` (see
    :func:`mmfw.training.distributed.local_ranks`), torchrun or SLURM, never from here.
    """
    run = TrainingRun(cfg, Path(run_dir), group, list(overrides or []))
    run.check_dir()  # before anything is written
    return run.as_rank()


def _new_id() -> str:
    """A wandb-compatible run id (lowercase letters and digits)."""
    import secrets

    return secrets.token_hex(4)


class TrainingRun:
    """One attempt at a run in its directory: check the directory → start the attempt →
    prepare (config, data, tokenizer) → build (model, loggers, trainer) → fit → collect the
    metrics → evaluate → finish. It owns every write to the run directory; rank 0 writes."""

    def __init__(self, cfg: DictConfig, run_dir: Path, group: str | None, overrides: list[str]):
        self.cfg = cfg
        self.run_dir = run_dir
        self.group = group
        self.overrides = overrides
        self.spec: TrainerSpec = instantiate(cfg.trainer)
        self.plan = self.spec.batch_plan(
            int(cfg.data.batch_size), cfg.data.get("global_batch_size")
        )
        self.record = RunRecord(run_dir)
        self.phase = "prepare"  # prepare | fit | evaluate: what an interruption stopped
        previous = self.record.read()
        # A resume continues a run that already holds its config: the config it was started
        # with stays until this attempt has trained.
        self.continuing = (
            bool(cfg.resume)
            and self.record.path.exists()
            and (run_dir / ".hydra" / "config.yaml").exists()
        )
        # A resumed run keeps its wandb run id (kept in run.json), so wandb continues its history.
        self.run_id = (
            previous.get("wandb_id") if cfg.resume and previous.get("wandb_id") else _new_id()
        )

    # -- the directory ---------------------------------------------------------------------

    def check_dir(self) -> None:
        """Refuse an attempt that cannot continue this run, before anything is written
        (``mmfw-train`` checks the same before Hydra writes; this covers sweeps and other
        launchers, and removes what Hydra wrote for the refused attempt)."""
        if not is_rank_zero() or not self.continuing:
            return
        choices, attempt_dir = {}, None
        if HydraConfig.initialized():
            hc = HydraConfig.get()
            choices = {k: str(v) for k, v in hc.runtime.choices.items()}
            if hc.output_subdir and str(hc.output_subdir).startswith(".hydra/attempts/"):
                attempt_dir = self.run_dir / str(hc.output_subdir)
        try:
            check_resumable(self.run_dir, resolved(self.cfg), choices)
        except UserError:
            if attempt_dir is not None and attempt_dir.is_dir():
                shutil.rmtree(attempt_dir)
                _remove_if_empty(attempt_dir.parent)
            raise

    def as_rank(self) -> dict:
        """This process's part of the run: one rank (several local ranks are started by
        ``mmfw-train``, torchrun or SLURM, never from here)."""
        spec = self.spec
        if spec.processes_per_node > 1 and not launched_externally():
            raise UserError(
                f"trainer.devices={spec.processes_per_node} needs one process per device: run "
                "it with mmfw-train (it starts the local ranks), torchrun or SLURM"
            )
        watch_parent()
        if spec.accelerator == "cpu" and spec.processes_per_node > 1:
            # Ranks on one CPU share its cores (as torchrun's OMP_NUM_THREADS does), instead of
            # each starting a thread per core and oversubscribing them.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // spec.processes_per_node))
        return self.execute()

    def execute(self) -> dict:
        """Run the attempt and record how it ended in run.json."""
        if is_rank_zero():
            self.record.start(self.overrides, self.plan.world, wandb_id=self.run_id)
        exit_code = 1  # what wandb records unless training returns: failed runs never read finished
        try:
            metrics = self._attempt()
            exit_code = 0
        except SIGTERMException as e:
            if is_rank_zero():
                self.record.finish("interrupted", error=self._interrupted_reason())
            raise SystemExit(143) from e  # 128 + SIGTERM: never mistaken for a finished run
        except BaseException as e:
            if is_rank_zero():
                status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
                extra = (
                    {"failed_step": e.step, "failed_records": e.ids[:64]}
                    if isinstance(e, NonFiniteError)
                    else {}
                )
                self.record.finish(status, error=summary(e), **extra)
            raise
        finally:
            _finish_wandb(exit_code)
            _leave_process_group()
        if is_rank_zero():
            self.record.finish("finished", step=metrics.get("step"))
        return metrics

    def _interrupted_reason(self) -> str:
        if self.phase == "evaluate":
            return (
                "stopped by a signal during the end-of-training evaluation; training finished "
                "(metrics.json keeps its metrics); resume=auto runs the evaluation again"
            )
        return "stopped by a signal; resume=auto continues"

    def _attempt(self) -> dict:
        self.prepare()
        trainer, module = self.build()
        fit_seconds = self.fit(trainer, module)
        metrics = self.collect(trainer, module, fit_seconds)
        if trainer.is_global_zero:
            # Written before any evaluation: a benchmark that fails cannot lose the training's numbers.
            write_metrics(self.run_dir, metrics)
            self.evaluate(trainer, module, metrics)
        for lg in self.loggers:
            lg.finalize("success")
        return metrics

    # -- prepare and build -----------------------------------------------------------------

    def prepare(self) -> None:
        """Seed, the resolved config, data, tokenizer and the model's parts (on ``meta``)."""
        cfg = self.cfg
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
        # The saved config then rebuilds the checkpoint's architecture without the source.
        self.cfg = cfg = with_hf_architecture(cfg)
        self.resolved = OmegaConf.to_container(cfg, resolve=True)
        if not self.continuing:
            self.save_config()
        self.datamodule = instantiate(cfg.data)
        self.tokenizer = build_tokenizer(
            cfg,
            self.run_dir / "tokenizer",
            self.datamodule.texts,
            inherited_tokenizer(cfg.stage.get("init_from")),
        )
        self.parts = build_components(cfg, self.tokenizer, meta=True)  # real: configure_model()
        self.datamodule.attach(self.parts.processor)
        self.datamodule.probe()  # a source that yields nothing stops here, before step 1

    def save_config(self) -> None:
        """``.hydra/config.yaml``: the resolved config (the run-dir contract)."""
        if is_rank_zero():
            (self.run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
            OmegaConf.save(OmegaConf.create(self.resolved), self.run_dir / ".hydra" / "config.yaml")

    def build(self):
        cfg, spec, run_dir = self.cfg, self.spec, self.run_dir
        tokenizer, parts = self.tokenizer, self.parts
        image_token_id = tokenizer.convert_tokens_to_ids(cfg.tokenizer.image_token)

        def build_vlm():
            return build_model(cfg, parts.strategy, len(tokenizer), image_token_id)

        module = VLMModule(
            build_vlm,
            instantiate(cfg.stage),
            instantiate(cfg.optim),
            self.resolved,
            strategy=spec.strategy,
            precision=spec.precision,
            activation_checkpointing=spec.activation_checkpointing,
            loss_reduction=str(cfg.data.get("loss_reduction", "token")),
            init_from_hf=hf_source(cfg),
            context_parallel=spec.context_parallel,
            encoder_balance=spec.encoder_balance,
            compile_blocks=spec.compile,
            view_budget=cfg.data.get("fixed_views"),
        )
        self.ckpt_path = resolve_resume(cfg.resume, run_dir)
        self.resume_step = resume_step = (
            checkpoint_step(Path(self.ckpt_path)) if self.ckpt_path else None
        )
        if self.ckpt_path:
            print(f"mmfw: resuming from {self.ckpt_path} (step {resume_step})")
        elif cfg.resume == "auto":
            print(f"mmfw: resume=auto: {run_dir} has no checkpoint yet; starting from step 0")
        self.loggers = self._loggers(resume_step)
        checkpoint = instantiate(cfg.checkpoint, dirpath=str(run_dir / "checkpoints"))
        callbacks = [checkpoint, *self._callbacks()]
        trainer = spec.build(
            self.plan,
            logger=self.loggers or False,
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=str(run_dir),
        )
        for lg in self.loggers:
            lg.log_hyperparams({**self.resolved, "overrides": self.overrides})
        return trainer, module

    def _callbacks(self) -> list:
        """``callbacks``: each entry a factory given this run (or a callback itself)."""
        out = []
        for name, node in (self.cfg.get("callbacks") or {}).items():
            made = instantiate(node)
            callback = made if isinstance(made, L.Callback) else made(self)
            if callback is not None and not isinstance(callback, L.Callback):
                raise UserError(
                    f"callbacks.{name}: {node.get('_target_')} gave {type(callback).__name__}, "
                    "not a Lightning callback (a factory takes the run and returns one)"
                )
            if callback is not None:
                out.append(callback)
        self.throughput = _required(out, ThroughputStats, "throughput")
        self.data_stats = _required(out, DataStats, "data")
        self.guard = next((c for c in out if isinstance(c, NumericsGuard)), None)
        return out

    def _loggers(self, resume_step: int | None) -> list:
        loggers = []
        for node in self.cfg.logger.values():
            factory = instantiate(node)
            kwargs = dict(
                save_dir=str(self.run_dir),
                run_name=f"{self.cfg.name}/{self.run_dir.name}",
                group=self.group,
                run_id=self.run_id,
                resume_step=resume_step,
            )
            if "overrides" in inspect.signature(factory).parameters:
                kwargs["overrides"] = self.overrides
            loggers.append(factory(**kwargs))
        return loggers

    # -- fit, metrics, evaluation ----------------------------------------------------------

    def fit(self, trainer, module) -> float:
        self.phase = "fit"
        preemption = Preemption(requeue=self.spec.requeue_on_preemption)
        preemption.install()
        t0 = time.perf_counter()
        try:
            trainer.fit(
                module,
                datamodule=self.datamodule,
                ckpt_path=self.ckpt_path,
                weights_only=True,  # resume never unpickles arbitrary objects
            )
        except SIGTERMException:
            print(f"mmfw: {preemption.requeue(trainer.is_global_zero)}")
            raise
        finally:
            preemption.restore()
            self.spec.strategy.release()
        # A run that stops between periodic saves still leaves its full final state in last.ckpt.
        trainer.save_checkpoint(self.run_dir / "checkpoints" / "last.ckpt", weights_only=False)
        if self.continuing:
            self.save_config()  # this attempt trained: its config is now the run's
        return time.perf_counter() - t0

    def collect(self, trainer, module, fit_seconds: float) -> dict:
        stats, data, plan = self.throughput, self.data_stats, self.plan
        done = self.run_dir / "metrics.json"
        if self.resume_step == trainer.global_step and done.exists():
            # This attempt trained no step (a run resumed at its last step, e.g. to finish an
            # interrupted evaluation): the training metrics are the ones already recorded.
            return json.loads(done.read_text())
        metrics: dict = {"step": int(trainer.global_step), "time/fit_s": round(fit_seconds, 2)}
        for key, value in trainer.callback_metrics.items():
            if key.endswith(("loss", "loss_epoch")):
                metrics[key] = float(value)
        metrics.update(stats.summary(plan.replicas, plan.context_parallel))
        params = list(module.model.parameters())
        # ZeRO-3 keeps a parameter's full size in ds_numel; DTensors (FSDP2) report the global one.
        metrics["params/total"] = sum(int(getattr(p, "ds_numel", p.numel())) for p in params)
        metrics["params/trainable"] = sum(
            int(getattr(p, "ds_numel", p.numel())) for p in params if p.requires_grad
        )
        skipped = _sum_over_ranks(dict(data.skipped), plan.context_parallel)
        metrics["data/skipped"] = skipped  # reason → records, the whole mapping
        metrics.update({f"data/skipped/{reason}": n for reason, n in sorted(skipped.items())})
        counts = torch.tensor(data.drawn, dtype=torch.float64, device=trainer.strategy.root_device)
        drawn = trainer.strategy.reduce(counts, reduce_op="sum") / plan.context_parallel
        metrics.update(data.mixture([int(x) for x in drawn.tolist()]))
        if not stats.samples and trainer.global_step == 0:
            raise UserError(
                "no training sample was usable: every record was skipped (see data/skipped)"
            )
        metrics["train/nan_skipped"] = self.guard.skipped if self.guard else 0
        metrics["batch/global"] = plan.global_batch
        metrics["batch/micro"] = plan.micro_batch
        metrics["batch/accumulate"] = plan.accumulate
        metrics["batch/devices"] = plan.world
        metrics["batch/context_parallel"] = plan.context_parallel
        return metrics

    def evaluate(self, trainer, module, metrics: dict) -> None:
        cfg = self.cfg
        if not (cfg.evaluate.at_end and cfg.get("benchmarks")):
            return
        self.phase = "evaluate"
        with sigterm_raises():  # an interrupted evaluation is resumable: resume=auto
            evaluated = evaluate_at_end(
                cfg, self.run_dir, module, self.parts, self.spec, step=int(trainer.global_step)
            )
        metrics.update(evaluated)
        write_metrics(self.run_dir, metrics)
        for lg in self.loggers:
            lg.log_metrics(
                {k: v for k, v in evaluated.items() if isinstance(v, float)},
                step=trainer.global_step,
            )


@contextlib.contextmanager
def sigterm_raises():
    """Outside ``fit`` (where Lightning handles it) SIGTERM would kill the process at once;
    here it raises, so run.json records the interruption."""
    import signal

    def handle(signum, frame):
        raise SIGTERMException()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _required(callbacks: list, kind: type, name: str):
    found = [c for c in callbacks if isinstance(c, kind)]
    if not found:
        raise UserError(
            f"callbacks.{name} ({kind.__name__}) is needed: metrics.json is made from it; "
            f"put it back (remove ~callbacks.{name})"
        )
    return found[0]


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def write_metrics(run_dir: Path, metrics: dict) -> None:
    write_json(run_dir / "metrics.json", metrics)


def evaluate_at_end(
    cfg: DictConfig, run_dir: Path, module, parts, spec: TrainerSpec, step: int | None = None
) -> dict:
    """Every entry of ``benchmarks``; one that fails is reported (``<name>/error`` in
    metrics.json, ``eval_errors`` in run.json) and the others still run."""
    import sys

    out: dict = {}
    errors: dict[str, str] = {}
    # The model in memory is the state last.ckpt was just written with.
    provenance = {
        "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
        "step": step,
        "run_status": RunRecord(run_dir).status,
    }
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
            result = evaluate_benchmark(
                name, instantiate(bench_cfg), model, processor, run_dir, provenance=provenance
            )
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
