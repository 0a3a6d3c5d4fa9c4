"""``mmfw-eval run=<run dir> benchmark=<name> [benchmark.path=<file>] [name=<folder>] [out=<dir>]``.

A live run (run.json says running) is evaluated at its newest intact checkpoint, into
``eval/<name>@step<N>/``, with a warning. ``out=DIR`` writes ``DIR/<name>/`` instead of
``<run>/eval/<name>/`` (a run you cannot write to). metrics.json records ``checkpoint``,
``step`` and ``run_status``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from mmfw.config import CONF_DIR  # noqa: E402
from mmfw.errors import run_reporting  # noqa: E402

COMMAND = "mmfw-eval"


def main() -> None:
    """Check the run, checkpoint, benchmark file and device before loading anything."""
    from mmfw.cli.preflight import split_argv, validate_command

    overrides, _, info = split_argv(sys.argv[1:])
    if not info:
        run_reporting(COMMAND, lambda: validate_command(overrides, "eval", validate_eval))
    hydra_main()


def validate_eval(cfg: DictConfig) -> list[str]:
    from mmfw.validate import MISSING, Checker, check_run

    c = Checker(cfg)
    check_run(c)
    path = c.get("benchmark.path")
    if path not in (None, MISSING):
        c.path("benchmark.path")
        if str(path).endswith(".tsv") and Path(str(path)).is_file():
            with Path(str(path)).open(encoding="utf-8") as f:
                header = f.readline().rstrip("\n").split("\t")
            from mmfw.config import target_class
            from mmfw.eval.benchmarks.open_ended import OpenEndedBenchmark

            bench = target_class(c.cfg.benchmark)
            open_ended = bench is not None and issubclass(bench, OpenEndedBenchmark)
            needed = ("index", "question") if open_ended else ("index", "question", "A", "B")
            missing = [col for col in needed if col not in header]
            if missing:
                layout = (
                    "index, image, question, answer" if open_ended else "index, question, A, B, ..."
                )
                c.add(
                    "benchmark.path",
                    str(path),
                    f"column(s) {missing} are missing (found {header})",
                    f"this benchmark's TSV has {layout} columns",
                )
    if c.get("benchmark.image_root") not in (None, MISSING):
        c.path("benchmark.image_root", kind="folder")
    for key in ("benchmark.max_samples",):
        if c.get(key) is not None:
            c.integer(key, 1, none=True)
    c.integer("benchmark.batch_size", 1)
    device = str(c.get("device"))
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            c.add("device", device, "this machine has no CUDA device", "use device=cpu")
    elif device not in ("cpu", "mps"):
        c.add("device", device, "use cpu or cuda[:N]")
    name = c.get("name")
    if isinstance(name, str) and ("/" in name or not name.strip()):
        c.add("name", name, "a folder name under <run>/eval, without '/'")
    check_writable(c)
    return c.problems


def check_writable(c) -> None:
    """The results' folder can be written: ``out`` if given, else ``<run>/eval``."""
    from mmfw.validate import MISSING

    run, out = c.get("run"), c.get("out")
    if run is MISSING or not Path(str(run)).is_dir():
        return
    target = Path(str(out)) if out not in (None, MISSING) else Path(str(run)) / "eval"
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        key, value = ("out", str(out)) if out not in (None, MISSING) else ("run", str(run))
        c.add(
            key,
            value,
            f"{existing} is not writable by this user",
            "pass out=<a folder you can write> to keep the results elsewhere",
        )


@hydra.main(config_path=CONF_DIR, config_name="eval", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    run_reporting(COMMAND, lambda: _job(cfg))


def _job(cfg: DictConfig) -> None:
    from mmfw.eval.runner import evaluate_benchmark
    from mmfw.runs import eval_target, load_run

    target = eval_target(Path(cfg.run), str(cfg.ckpt))
    changes = cfg.get("resolution")
    resolution = OmegaConf.to_container(changes, resolve=True) if changes else {}
    run = load_run(cfg.run, ckpt=str(target.checkpoint), device=cfg.device, resolution=resolution)
    overridden = any(
        o.split("=")[0].lstrip("+~").startswith("synthetic")
        for o in HydraConfig.get().overrides.task
    )
    if "synthetic" in run.config and not overridden:
        # A synthetic benchmark defaults to the task the run was trained on.
        with open_dict(cfg):
            cfg.synthetic = run.config.synthetic
    name = eval_name(cfg, HydraConfig.get().runtime.choices["benchmark"])
    if target.live:
        name = f"{name}@step{target.step}"
        print(
            f"mmfw-eval: warning: {cfg.run} is still running (run.json); evaluating its newest "
            f"intact checkpoint {target.checkpoint} (step {target.step}) into {name}/",
            file=sys.stderr,
        )
    out = Path(cfg.out) / name if cfg.get("out") else Path(cfg.run) / "eval" / name
    metrics = evaluate_benchmark(
        name,
        instantiate(cfg.benchmark),
        run.model,
        run.processor,
        cfg.run,
        out_dir=out,
        provenance=target.provenance(),
    )
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_category"}, indent=2))
    if metrics.get("answers") == "none":
        print(
            f"mmfw-eval: the benchmark file has no answers: predictions written to "
            f"{out / 'predictions.jsonl'} for submission; no accuracy",
            file=sys.stderr,
        )


def eval_name(cfg: DictConfig, choice: str) -> str:
    """The folder under ``<run>/eval``: ``name`` if given, else the benchmark file's stem
    (two TSVs never share a folder), else the benchmark choice."""
    if cfg.get("name"):
        return str(cfg.name)
    path = cfg.benchmark.get("path")
    return Path(str(path)).stem if path else choice


if __name__ == "__main__":
    main()
