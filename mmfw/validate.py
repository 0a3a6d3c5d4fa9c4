"""Validate a composed config before anything is built (data, tokenizer, model).

Every problem becomes one line: the full key, the bad value, what is allowed, and the fix.
Runs in well under a second; ``mmfw-train`` and ``mmfw-plan`` call it first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from mmfw.config import target_class

MISSING = object()
PRECISIONS = {
    "32-true", "32", "bf16-mixed", "bf16-true", "16-mixed", "16-true", "64-true",
    "transformer-engine", "transformer-engine-float16",
}  # fmt: skip
ACCELERATORS = {"cpu", "gpu", "cuda", "auto", "mps", "tpu"}
# Resolution keys that are sizes or counts: positive integers (lists of them).
POSITIVE_SIZES = {"size", "crop_size", "max_crops", "min_crops", "patch_size", "eval_size", "max_size", "sizes", "pinpoints", "grid"}  # fmt: skip


class Checker:
    """Collects problems while reading values from a config."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.problems: list[str] = []

    def get(self, key: str) -> Any:
        try:
            value = OmegaConf.select(self.cfg, key, throw_on_missing=True, default=MISSING)
        except MissingMandatoryValue:
            self.problems.append(f"{key} is not set (???): give it on the command line ({key}=...)")
            return MISSING
        except InterpolationResolutionError as e:
            self.problems.append(f"{key} cannot be resolved: {e}")
            return MISSING
        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
        return value

    def add(self, key: str, value: Any, allowed: str, fix: str = "") -> None:
        msg = f"{key}={value!r}: {allowed}"
        self.problems.append(f"{msg}; {fix}" if fix else msg)

    def integer(self, key: str, minimum: int, *, none: bool = False, also: tuple = ()) -> Any:
        value = self.get(key)
        if (
            value is MISSING
            or (value is None and none)
            or value in also
            and not isinstance(value, bool)
        ):
            return value
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            extra = f" (or {', '.join(map(str, also))})" if also else ""
            extra += " or null" if none else ""
            self.add(key, value, f"must be an integer >= {minimum}{extra}")
            return MISSING
        return value

    def number(self, key: str, low: float, high: float | None = None, *, none: bool = False,
               open_low: bool = False) -> Any:  # fmt: skip
        value = self.get(key)
        if value is MISSING or (value is None and none):
            return value
        bad = not isinstance(value, int | float) or isinstance(value, bool)
        if not bad:
            bad = value <= low if open_low else value < low
            bad = bad or (high is not None and value > high)
        if bad:
            span = f"{'>' if open_low else '>='} {low}" + (
                f" and <= {high}" if high is not None else ""
            )
            self.add(key, value, f"must be a number {span}" + (" or null" if none else ""))
            return MISSING
        return value

    def choice(self, key: str, allowed: set[str]) -> Any:
        value = self.get(key)
        if value is not MISSING and str(value) not in allowed:
            self.add(key, value, f"use one of {sorted(allowed)}")
        return value

    def path(self, key: str, *, kind: str = "file", optional: bool = False) -> None:
        value = self.get(key)
        if value is MISSING or (value is None and optional):
            return
        if value is None or str(value).strip() == "":
            self.add(key, value, f"needs a {kind} path")
            return
        p = Path(str(value)).expanduser()
        if not p.exists():
            self.add(
                key,
                str(value),
                f"no such {kind}",
                "check the path (relative paths are from the current folder)",
            )
        elif kind == "file" and p.is_dir():
            self.add(key, str(value), "is a folder, expected a file")
        elif kind == "folder" and not p.is_dir():
            self.add(key, str(value), "is not a folder")


def check_run(c: Checker) -> None:
    """``run`` is a run directory (or a format=mmfw export) whose ``ckpt`` exists and is
    intact (mmfw-eval, mmfw-export)."""
    from mmfw.run_dir.checkpoints import is_intact, unreadable, weights_to_evaluate
    from mmfw.run_dir.safetensors_io import INDEX, WEIGHTS

    run = c.get("run")
    if run is MISSING:
        return
    run_dir = Path(str(run))
    if not (run_dir / ".hydra" / "config.yaml").exists():
        c.add(
            "run",
            str(run),
            "not an mmfw run directory (no .hydra/config.yaml)",
            "give the folder mmfw-train wrote",
        )
        return
    ckpt = str(c.get("ckpt"))
    try:
        path = weights_to_evaluate(run_dir, ckpt)
    except (FileNotFoundError, PermissionError) as e:
        c.add("ckpt", ckpt, str(e), "wait for the run's first checkpoint, or pass ckpt=<path>")
        return
    if not path.exists():
        c.add("ckpt", ckpt, f"{path} does not exist", "ckpt=last or the path of a checkpoint")
    elif unreadable(path):
        c.add("ckpt", ckpt, unreadable(path), "a checkpoint this user can read")
    elif path.name not in (WEIGHTS, INDEX) and not is_intact(path):
        c.add(
            "ckpt",
            ckpt,
            f"{path} is incomplete or corrupt",
            "give another checkpoint (checkpoints/stepNNNNNN.ckpt)",
        )


def validate_train(cfg: DictConfig, *, check_devices: bool = True) -> list[str]:
    """Problems of an ``mmfw-train`` config (empty list: fine)."""
    c = Checker(cfg)
    c.integer("seed", 0)
    name = c.get("name")
    if isinstance(name, str) and ("/" in name or not name.strip()):
        c.add("name", name, "a run family name without '/'", "e.g. name=my_ablation")
    resume = c.get("resume")
    if resume not in (None, "auto", MISSING):
        if not Path(str(resume)).exists():
            c.add("resume", resume, "no such checkpoint", "use resume=auto or the path of a .ckpt")
        else:
            from mmfw.run_dir.checkpoints import is_intact

            if not is_intact(Path(str(resume))):
                c.add(
                    "resume",
                    resume,
                    "the checkpoint is incomplete or corrupt",
                    "give an intact one (checkpoints/stepNNNNNN.ckpt) or resume=auto, which picks the newest intact",
                )
    _trainer(c, check_devices)
    _data(c)
    _stage(c)
    _resolution(c)
    for key in ("llm.pretrained", "encoder.pretrained"):
        _pretrained(c, key)
    benchmarks = c.get("benchmarks")
    for name_, node in (benchmarks or {}).items() if isinstance(benchmarks, dict) else []:
        _benchmark(c, f"benchmarks.{name_}", node)
    c.integer("evaluate.every_n_steps", 1, none=True)
    c.integer("evaluate.max_samples", 1, none=True)
    c.integer("evaluate.table_rows", 0)
    mode = c.get("logger.wandb.mode")
    if mode not in (None, MISSING) and mode not in ("auto", "online", "offline", "disabled"):
        c.add("logger.wandb.mode", mode, "use auto, online, offline or disabled")
    if not c.problems:
        _instantiate_cheap_nodes(c)
    return c.problems


def _instantiate_cheap_nodes(c: Checker) -> None:
    """The small objects (no weights, no data) build now, so their own checks (a yaml key
    typo, a stage rule, a strategy setting) speak before any data or model is touched."""
    from hydra.utils import instantiate

    from mmfw.errors import message_of

    for key in ("stage", "optim", "resolution", "template", "trainer"):
        if key not in c.cfg:
            continue
        try:
            instantiate(c.cfg[key])
        except Exception as e:  # noqa: BLE001 - reported with the node's key
            cause = e.__cause__
            if isinstance(cause, ValueError) and str(cause).startswith(f"{key}."):
                c.problems.append(str(cause))  # the constructor's own line names the key
            else:
                c.problems.append(f"{key}: {message_of(e)}".replace("\n", " "))


def _trainer(c: Checker, check_devices: bool) -> None:
    steps = c.integer("trainer.max_steps", 1, also=(-1,))
    epochs = c.integer("trainer.max_epochs", -1, none=True)
    if steps == -1 and epochs in (None, -1):
        c.add(
            "trainer.max_steps",
            -1,
            "with trainer.max_epochs unset the run never ends",
            "set trainer.max_steps or trainer.max_epochs",
        )
    c.integer("trainer.num_nodes", 1)
    c.integer("trainer.log_every_n_steps", 1)
    c.integer("trainer.accumulate_grad_batches", 1)
    c.number("trainer.gradient_clip_val", 0, none=True)
    interval = c.get("trainer.val_check_interval")
    if interval not in (None, MISSING) and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
    ):
        c.add(
            "trainer.val_check_interval",
            interval,
            "must be a positive number of steps (or a fraction of an epoch) or null",
        )
    c.integer("checkpoint.every_n_train_steps", 1, none=True)
    c.choice("trainer.precision", PRECISIONS)
    devices = c.get("trainer.devices")
    if devices is not MISSING and not (
        (
            isinstance(devices, int)
            and not isinstance(devices, bool)
            and (devices >= 1 or devices == -1)
        )
        or devices == "auto"
        or (isinstance(devices, list) and devices)
    ):
        c.add(
            "trainer.devices",
            devices,
            "a positive number of devices per node, a list of device indices, or auto",
        )
    accelerator = c.choice("trainer.accelerator", ACCELERATORS)
    if check_devices and accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            c.add(
                "trainer.accelerator",
                accelerator,
                "this machine has no CUDA device",
                "use trainer=cpu, or trainer.accelerator=cpu with this trainer",
            )
        elif isinstance(devices, int) and devices > torch.cuda.device_count():
            c.add(
                "trainer.devices", devices, f"this machine has {torch.cuda.device_count()} GPU(s)"
            )
    gpu, table = c.get("trainer.gpu"), c.get("trainer.peak_tflops_by_gpu")
    # Named even on a CPU run (where TrainerSpec ignores it): the yaml is meant for a GPU.
    if gpu not in (None, MISSING) and isinstance(table, dict) and gpu not in table:
        c.add(
            "trainer.gpu",
            gpu,
            f"not in trainer.peak_tflops_by_gpu ({', '.join(sorted(table))})",
            "or set trainer.peak_tflops=<dense bf16 TFLOP/s of one device>",
        )
    # trainer.peak_tflops: TrainerSpec's own rule, checked when the preflight builds it.
    _context_parallel(c)


def _context_parallel(c: Checker) -> None:
    """Ulysses splits the LLM's heads over the group and needs inline fusion; known from the
    yaml where the LLM's config is written there (tiny and seed recipes)."""
    size = c.get("trainer.context_parallel")
    if size in (None, MISSING) or not isinstance(size, int) or size <= 1:
        return
    heads = c.get("llm.config.num_attention_heads")
    kv = c.get("llm.config.num_key_value_heads") or heads
    if isinstance(heads, int) and isinstance(kv, int) and (heads % size or kv % size):
        c.add(
            "trainer.context_parallel",
            size,
            f"must divide the LLM's attention heads ({heads}) and key/value heads ({kv})",
            f"choose a divisor of {kv}",
        )
    fusion = str(c.get("fusion._target_") or "")
    if fusion.endswith("HyperAttentionFusion"):
        c.add(
            "trainer.context_parallel",
            size,
            "needs inline fusion (hyper attention reads the whole image sequence in every layer)",
            "use trainer.context_parallel=1 with fusion=hyper_attention",
        )


def _data(c: Checker) -> None:
    micro = c.integer("data.batch_size", 1)
    c.integer("data.global_batch_size", 1, none=True)
    c.integer("data.num_workers", 0)
    c.integer("data.max_length", 8)
    c.integer("data.max_images_per_row", 1, none=True)
    c.integer("data.max_tokens_per_batch", 1, none=True)
    from mmfw.models.loss import POWERS

    reduction = c.get("data.loss_reduction")
    if reduction is not MISSING and reduction not in POWERS:
        c.add("data.loss_reduction", reduction, f"use {', '.join(POWERS)}")
    fusion = target_class(c.cfg.get("fusion") or {})
    if c.get("data.packing") is True and not getattr(fusion, "supports_packing", True):
        c.add(
            "data.packing",
            True,
            "hyper attention (mPLUG-Owl3) keeps one sample per row",
            "use data.packing=false with fusion=hyper_attention",
        )
    fraction = c.get("data.max_skipped_fraction")
    if fraction is not MISSING:
        c.number("data.max_skipped_fraction", 0.0, 1.0)
    for group in ("data.sources", "data.val_sources"):
        sources = c.get(group)
        if sources is MISSING:
            continue
        if group == "data.sources" and not sources:
            c.add(group, sources, "is empty", "name at least one training source")
        for name, src in (sources or {}).items():
            key = f"{group}.{name}"
            if not isinstance(src, dict):
                continue
            if "path" in src:
                source = target_class(src)
                kind = getattr(source, "path_kind", "file")
                if not (getattr(source, "accepts_urls", False) and "://" in str(src.get("path"))):
                    c.path(f"{key}.path", kind=kind)
            if "image_root" in src:
                c.path(f"{key}.image_root", kind="folder", optional=True)
            for share in ("weight", "alpha"):
                if share in src:
                    c.number(f"{key}.{share}", 0, none=True)
            if src.get("weight") is not None and src.get("alpha") is not None:
                c.add(
                    f"{key}.alpha",
                    src["alpha"],
                    f"{key}.weight is set too",
                    f"give one of them ({key}.weight=null)",
                )
            if "epochs" in src:
                c.number(f"{key}.epochs", 0, open_low=True)
            if "max_samples" in src:
                c.integer(f"{key}.max_samples", 1, none=True)
    if micro is MISSING or any(p.startswith(("trainer.", "data.")) for p in c.problems):
        return
    from mmfw.training.batching import derive_accumulation, device_count

    try:
        world = device_count(str(c.get("trainer.accelerator")), c.get("trainer.devices"))
        world *= int(c.get("trainer.num_nodes") or 1)
        accumulate = derive_accumulation(
            global_batch_size=c.get("data.global_batch_size"),
            micro_batch=int(micro),
            world=world,
            accumulate=int(c.get("trainer.accumulate_grad_batches") or 1),
            context_parallel=int(c.get("trainer.context_parallel") or 1),
        )
        world //= int(c.get("trainer.context_parallel") or 1)
    except (ValueError, TypeError) as e:
        c.problems.append(str(e))
        return
    if not any(p.startswith("data.sources") for p in c.problems):
        _one_batch_fits(c, int(micro), accumulate, world)


def _one_batch_fits(c: Checker, micro: int, accumulate: int, world: int) -> None:
    """The training data holds at least one global batch (else the sampler of every rank
    would refuse it once the ranks run); known here where the sources can count their records
    cheaply (a generated task's configured size, a small or already indexed file)."""
    from hydra.utils import instantiate

    sizes = {}
    for name, node in (c.cfg.data.get("sources") or {}).items():
        try:
            src = instantiate(node)
            n = src.size_hint()
        except Exception:  # noqa: BLE001 - the data build reports it with the source named
            return
        if n is None:
            return
        if n == 0:
            c.add(
                f"data.sources.{name}.path",
                str(src.path),
                "holds no records",
                "give a file with records",
            )
        sizes[name] = round(n * src.epochs)
    total, batch = sum(sizes.values()), micro * accumulate * world
    if sizes and 0 not in sizes.values() and total < batch:
        counts = ", ".join(f"{name} {n}" for name, n in sizes.items())
        c.problems.append(
            f"data.sources hold {total} training records ({counts}), fewer than one global "
            f"batch of {batch} = data.batch_size={micro} x {accumulate} accumulation x {world} "
            "device(s) (trainer.devices x trainer.num_nodes): no step can train; lower "
            "data.batch_size, data.global_batch_size or trainer.devices, or add data"
        )


def _stage(c: Checker) -> None:
    c.number("stage.lr", 0, open_low=True)
    init_from = c.get("stage.init_from")
    if init_from not in (None, MISSING):
        p = Path(str(init_from)).expanduser()
        if not (p.is_file() or (p / "checkpoints").is_dir() or p.is_dir()):
            c.add(
                "stage.init_from",
                str(init_from),
                "no such run directory or checkpoint",
                "point it at the previous stage's run directory or a .ckpt",
            )
    hf = c.get("model.init_from_hf")
    if hf not in (None, MISSING):
        p = Path(str(hf)).expanduser()
        if p.exists() and not (p / "config.json").is_file():
            c.add(
                "model.init_from_hf",
                str(hf),
                "this folder has no config.json",
                "give a transformers LLaVA checkpoint folder (mmfw-export format=hf_llava) or a hub id",
            )
        elif not p.exists() and str(hf).count("/") != 1:
            c.add(
                "model.init_from_hf",
                str(hf),
                "no such folder, and not a hub id (org/name)",
                "give a transformers LLaVA checkpoint folder or a hub id",
            )
        if init_from not in (None, MISSING):
            c.add(
                "model.init_from_hf",
                str(hf),
                "stage.init_from is set too",
                "start from one of them",
            )
        if (p / "config.json").is_file():
            # The recipe settings the checkpoint contradicts, before any run dir exists.
            from mmfw.errors import ConfigProblems
            from mmfw.training.init_from_hf import with_hf_architecture

            try:
                with_hf_architecture(c.cfg)
            except ConfigProblems as e:
                c.problems.extend(e.problems)
            except Exception as e:  # noqa: BLE001 - an unreadable config.json, named
                c.add("model.init_from_hf", str(hf), f"its config.json cannot be read ({e})")
    c.number("optim.weight_decay", 0)
    c.number("optim.warmup_ratio", 0, 1)
    c.integer("optim.warmup_steps", 0, none=True)
    c.number("optim.min_lr_ratio", 0, 1)


def _resolution(c: Checker) -> None:
    node = c.get("resolution")
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key not in POSITIVE_SIZES or value is None:
            continue
        flat = _flatten(value)
        if not flat or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in flat):
            c.add(f"resolution.{key}", value, "sizes and counts must be positive integers")


def _flatten(value: Any) -> list:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [value]


def _pretrained(c: Checker, key: str) -> None:
    value = c.get(key)
    if not isinstance(value, str) or not value:
        return
    local = value.startswith(("/", "./", "../", "~")) or Path(value).expanduser().exists()
    if local and not Path(value).expanduser().exists():
        c.add(
            key,
            value,
            "no such local folder",
            "give the folder with the weights (config.json, *.safetensors) or a hub id",
        )


def _benchmark(c: Checker, key: str, node: Any) -> None:
    if not isinstance(node, dict):
        return
    if node.get("path") is not None:
        c.path(f"{key}.path")
    if node.get("image_root") is not None:
        c.path(f"{key}.image_root", kind="folder")
    if "max_samples" in node:
        c.integer(f"{key}.max_samples", 1, none=True)
    if "batch_size" in node:
        c.integer(f"{key}.batch_size", 1)


def parse_image_sizes(value: Any) -> list[tuple[int, int]]:
    """``plan.image_sizes``: ``[[W,H], ...]``, or ``WxH`` strings (``1920x1080``), or one
    such string; every size a positive integer. Raises ValueError naming the entry."""
    if value is None:
        return []
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    items = [value] if isinstance(value, str) else list(value)
    if len(items) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        items = [items]  # a single [W, H]
    sizes = []
    for item in items:
        pair = item
        if isinstance(item, str):
            parts = item.lower().replace("×", "x").split("x")
            try:
                pair = [int(p) for p in parts]
            except ValueError:
                pair = None
        ok = (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
        )
        if not ok:
            raise ValueError(
                f"plan.image_sizes entry {item!r}: a size is [width, height] or WIDTHxHEIGHT with "
                "positive integers, e.g. plan.image_sizes='[[1920,1080],640x480]'"
            )
        sizes.append((int(pair[0]), int(pair[1])))
    return sizes


def validate_plan(cfg: DictConfig) -> list[str]:
    """Problems of an ``mmfw-plan`` config: what planning reads (no device or data path is
    needed unless ``plan.data_samples`` asks for data)."""
    c = Checker(cfg)
    try:
        parse_image_sizes(c.get("plan.image_sizes"))
    except ValueError as e:
        c.problems.append(str(e))
    c.choice("plan.format", {"json", "text"})
    samples = c.integer("plan.data_samples", 0)
    c.number("plan.gpu_memory_gb", 0, none=True, open_low=True)
    _trainer(c, check_devices=False)
    _stage(c)
    _resolution(c)
    if isinstance(samples, int) and samples > 0:
        _data(c)
    return c.problems


def check(cfg: DictConfig, validator: Callable[..., list[str]] = validate_train, **kw) -> None:
    """Raise :class:`mmfw.errors.ConfigProblems` listing every problem."""
    from mmfw.errors import ConfigProblems

    problems = validator(cfg, **kw)
    if problems:
        raise ConfigProblems(problems)
