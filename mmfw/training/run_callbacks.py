"""The factories of ``conf/callbacks/default.yaml``: each takes the run
(:class:`mmfw.training.run.TrainingRun`, after its data, tokenizer and parts are prepared) and
returns its Lightning callback, or None when the run does not use it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from mmfw.run_dir.checkpoints import newest_intact
from mmfw.run_dir.record import RunRecord
from mmfw.training.callbacks import (
    DataStats,
    GracefulStop,
    SaveOnException,
    StepProgressBar,
    StepSeeds,
    ThroughputStats,
)
from mmfw.training.module import format_groups
from mmfw.training.numerics import NumericsGuard


def throughput(run) -> ThroughputStats:
    return ThroughputStats(
        peak_tflops=run.spec.peak_tflops, image_token_id=run.parts.processor.image_token_id
    )


def data_stats(run) -> DataStats:
    configured = run.datamodule.configured_fractions()
    return DataStats(
        max_skipped_fraction=run.datamodule.max_skipped_fraction,
        record=RunRecord(run.run_dir),
        sources={n: (s.category, configured[n]) for n, s in run.datamodule.sources.items()},
    )


def numerics_guard(run) -> NumericsGuard:
    return NumericsGuard(
        **run.spec.numerics,
        vocab_size=len(run.tokenizer),
        template=template_name(run.cfg),
        last_good=lambda: newest_intact(run.run_dir),
    )


def step_seeds(run) -> StepSeeds:
    return StepSeeds(int(run.cfg.seed))


def graceful_stop(run) -> GracefulStop:
    return GracefulStop()


def save_on_exception(run) -> SaveOnException:
    return SaveOnException(str(run.run_dir / "checkpoints" / "last.ckpt"))


def report_setup(run) -> ReportSetup:
    return ReportSetup(run.run_dir, run.plan)


def record_progress(run) -> RecordProgress:
    return RecordProgress(RunRecord(run.run_dir))


def progress_bar(run) -> StepProgressBar | None:
    return StepProgressBar() if run.spec.loop["enable_progress_bar"] else None


def in_training_eval(run):
    """The in-training evaluation, when ``evaluate.every_n_steps`` is set."""
    from mmfw.training.in_training_eval import InTrainingEval

    cfg = run.cfg
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
        run.parts.processor,
        int(every),
        table_rows=int(cfg.evaluate.get("table_rows", 8)),
        synced=run.spec.strategy.shards_parameters,
    )


def template_name(cfg) -> str:
    """The template choice (``vicuna_v1``) when Hydra composed the run, else its class."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("template")
        if choice:
            return str(choice)
    return str(cfg.template.get("_target_", "?")).rsplit(".", 1)[-1]


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
            f"accumulation {p.accumulate} x {p.replicas} replica(s)"
            + (
                f" ({p.world} devices, context parallel {p.context_parallel})"
                if p.context_parallel > 1
                else ""
            )
        )
        if pl_module.init_info:
            info = pl_module.init_info
            source = (
                "model.init_from_hf" if info.get("kind") == "init_from_hf" else "stage.init_from"
            )
            print(
                f"mmfw: {source} loaded {info['tensors']} tensors from {info['path']} "
                f"(sha256 {info['sha256']})"
            )
        rows = getattr(pl_module, "param_group_table", [])
        print(format_groups(rows))
        payload = {"batch": p.__dict__ | {"global_batch": p.global_batch}, "groups": rows}
        if pl_module.init_info:
            payload["init_from"] = pl_module.init_info
        (self.run_dir / "optimizer_groups.json").write_text(json.dumps(payload, indent=2))
