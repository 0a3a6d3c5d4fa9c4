"""``mmfw-plan``: parameters and image-token costs of a config, on the meta device."""

from __future__ import annotations

import bisect
import io
import random
import statistics
import tempfile
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from mmfw.build import build_model, build_tokenizer
from mmfw.data.formats.llava_json import RecordError, parse_record
from mmfw.data.processor import ImageTokenCounter, SampleProcessor
from mmfw.models.vlm import VisionLanguageModel
from mmfw.training.activations import activation_memory
from mmfw.training.init_from_hf import with_hf_architecture
from mmfw.training.memory import model_state_memory
from mmfw.training.stages import MODULES, module_of
from mmfw.validate import parse_image_sizes


def plan(cfg: DictConfig) -> dict:
    """The ``mmfw-plan`` JSON contract (see README)."""
    cfg = with_hf_architecture(cfg)  # under model.init_from_hf: the checkpoint's architecture
    warnings: list[str] = []
    strategy = instantiate(cfg.resolution)
    vocab = None if llm_knows_vocab(cfg) else int(cfg.tokenizer.vocab_size)
    if vocab is not None:
        warnings.append(
            f"llm has no published vocab size: planned with tokenizer.vocab_size={vocab}"
        )
    with torch.device("meta"):
        model = build_model(cfg, strategy, vocab, image_token_id=0)
        instantiate(cfg.stage).freeze(model)
    counter = ImageTokenCounter(model.feature_grid, model.fusion.placeholders_per_image)
    result = {"params": param_counts(model), "image_tokens": [], "warnings": warnings}
    result["memory"] = memory_plan(cfg, model)
    limit = int(cfg.data.max_length)
    per_image: list[tuple[list[int], list[tuple[int, int]]]] = []
    for w, h in parse_image_sizes(cfg.plan.image_sizes):
        layout = strategy.layout(int(w), int(h))
        tokens = counter(layout)
        patch = model.encoder.patch_size
        patches = (layout.view_hw[0] // patch) * (layout.view_hw[1] // patch)
        per_image.append(([int(w), int(h)], [(layout.num_views, patches)]))
        result["image_tokens"].append(
            {
                "size": [int(w), int(h)],
                "grid": list(layout.grid),
                "views": layout.num_views,
                "tokens": tokens,
            }
        )
        if tokens > limit:
            warnings.append(
                f"a {w}x{h} image costs {tokens} tokens, more than data.max_length={limit}"
            )
        native = getattr(model.encoder, "image_size", None)
        if native and layout.view_hw != (native, native):
            msg = f"views of {layout.view_hw[1]}x{layout.view_hw[0]} px: the encoder's {native}-px position embeddings are interpolated"
            if msg not in warnings:
                warnings.append(msg)
    add_activations(cfg, model, result["memory"], per_image)
    if int(cfg.plan.data_samples) < 0:
        raise ValueError(f"plan.data_samples={cfg.plan.data_samples} must be >= 0")
    if int(cfg.plan.data_samples) > 0:
        result["data"] = data_stats(cfg, strategy, counter, warnings)
    return result


def memory_plan(cfg: DictConfig, model: VisionLanguageModel) -> dict:
    """Model states per device for the chosen trainer (see ``mmfw.training.memory``)."""
    spec = instantiate(cfg.trainer)
    compute = getattr(spec.strategy, "param_dtype", None)
    memory = model_state_memory(
        model,
        strategy=spec.strategy.name,
        sharding=spec.strategy.sharding,
        precision=spec.precision,
        devices=spec.world,
        optimizer_bytes=float(instantiate(cfg.optim).state_bytes_per_param),
        compute_bytes=compute.itemsize if compute is not None else 2,
    )
    budget = cfg.plan.get("gpu_memory_gb")
    if budget:
        memory["gpu_memory_gb"] = float(budget)
        memory["fits"] = memory["per_device"]["total"] <= float(budget) * 2**30
    return memory


def add_activations(
    cfg: DictConfig, model: VisionLanguageModel, memory: dict, per_image: list
) -> None:
    """``per_device.activations``: the largest over the planned image sizes (one image per
    row of ``data.max_length`` tokens, ``data.batch_size`` rows; text only without sizes),
    divided over ``trainer.context_parallel`` where it applies (``mmfw.training.activations``)."""
    spec = instantiate(cfg.trainer)
    checkpointed = {*instantiate(cfg.stage).gradient_checkpointing, *spec.activation_checkpointing}
    rows = []
    for size, views in per_image or [(None, [])]:
        bytes_ = activation_memory(
            model,
            micro_batch=int(cfg.data.batch_size),
            tokens_per_row=int(cfg.data.max_length),
            views=views,
            precision=spec.precision,
            checkpointed=checkpointed,
            context_parallel=spec.context_parallel,
        )
        rows.append({"size": size, **bytes_})
    worst = max(rows, key=lambda r: r["per_device"])
    d = memory["per_device"]
    d["activations"] = worst["per_device"]
    d["total_with_activations"] = d["total"] + d["activations"]
    memory["activations"] = {
        "micro_batch": int(cfg.data.batch_size),
        "tokens_per_row": int(cfg.data.max_length),
        "context_parallel": spec.context_parallel,
        "checkpointed": sorted(checkpointed),
        "without_context_parallel": worst["without_context_parallel"],
        "by_image_size": rows,
    }
    if "gpu_memory_gb" in memory:
        memory["fits_with_activations"] = (
            d["total_with_activations"] <= memory["gpu_memory_gb"] * 2**30
        )


def llm_knows_vocab(cfg: DictConfig) -> bool:
    """True when the LLM has its own vocabulary size (pretrained, or ``llm.config.vocab_size``)."""
    return bool(cfg.llm.get("pretrained")) or "vocab_size" in (cfg.llm.get("config") or {})


def param_counts(model: VisionLanguageModel) -> dict:
    """Total and trainable parameters, overall and per module (encoder/connector/fusion/llm)."""
    modules = {m: {"total": 0, "trainable": 0} for m in MODULES}
    for name, p in model.named_parameters():
        entry = modules[module_of(name, model.param_owners)]
        entry["total"] += p.numel()
        entry["trainable"] += p.numel() if p.requires_grad else 0
    return {
        "total": sum(m["total"] for m in modules.values()),
        "trainable": sum(m["trainable"] for m in modules.values()),
        "modules": modules,
    }


def _distribution(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))],
        "max": ordered[-1],
    }


def data_stats(cfg: DictConfig, strategy, counter: ImageTokenCounter, warnings: list[str]) -> dict:
    """Image- and total-token distribution of sampled training records (image headers only)."""
    data = instantiate(cfg.data)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(cfg, Path(tmp), data.texts)
    processor = SampleProcessor(
        tokenizer=tokenizer,
        template=instantiate(cfg.template),
        strategy=strategy,
        counter=counter,
        max_length=int(cfg.data.max_length),
        image_token=cfg.tokenizer.image_token,
    )
    # Sampled by position, never listing every record (sources may hold millions).
    sources = list(data.sources.values())
    offsets = [0]
    for src in sources:
        offsets.append(offsets[-1] + len(src.records()))
    rng = random.Random(int(cfg.plan.seed))
    positions = rng.sample(range(offsets[-1]), min(int(cfg.plan.data_samples), offsets[-1]))
    picked = []
    for p in positions:
        s = bisect.bisect_right(offsets, p) - 1
        picked.append((sources[s], p - offsets[s]))
    image_tokens, totals, skipped = [], [], {}
    for src, i in picked:
        try:
            record = parse_record(src.records()[i])
            sizes = [_image_size(src.image_root, rel) for rel in record.images]
            layouts = [strategy.layout(w, h, images_in_sample=len(sizes)) for w, h in sizes]
            # The training path's own tokenisation, with layouts from the image headers.
            ids, _ = processor.encode(processor.template.render(record.turns), layouts)
        except (RecordError, ValueError) as e:
            reason = getattr(e, "reason", "template")
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        image_tokens.append(sum(counter(lay) for lay in layouts))
        totals.append(len(ids))
    limit = int(cfg.data.max_length)
    over = sum(t > limit for t in totals)
    if over:
        warnings.append(f"{over} of {len(totals)} sampled records exceed data.max_length={limit}")
    return {
        "samples": len(totals),
        "image_tokens": _distribution(image_tokens),
        "total_tokens": _distribution(totals),
        "over_max_length": over,
        "max_length": limit,
        "skipped": skipped,
    }


def _image_size(root: Path, rel) -> tuple[int, int]:
    """(width, height) from the file header (or embedded bytes), without decoding the pixels."""
    path = io.BytesIO(rel) if isinstance(rel, bytes) else root / rel
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError as e:
        raise RecordError("missing_image", f"image {path} does not exist") from e
    except OSError as e:
        raise RecordError("bad_image", f"image {path} cannot be read ({e})") from e


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def memory_lines(m: dict) -> list[str]:
    d = m["per_device"]
    lines = [
        f"model states per device ({m['strategy']}, {m['devices']} device(s), {m['precision']}):",
        "  "
        + "  ".join(f"{k} {_gib(d[k])}" for k in ("weights", "gradients", "optimizer", "gathered")),
        f"  total {_gib(d['total'])}",
    ]
    if "cpu_per_device" in m:
        c = m["cpu_per_device"]
        lines.append(
            "  offloaded to CPU per rank: " + "  ".join(f"{k} {_gib(v)}" for k, v in c.items())
        )
    if "activations" in m:
        act = m["activations"]
        cp = act["context_parallel"]
        lines.append(
            f"  activations {_gib(d['activations'])} per device (micro-batch {act['micro_batch']}"
            f" x {act['tokens_per_row']} tokens"
            + (
                f", context parallel {cp}; {_gib(act['without_context_parallel'])} without"
                if cp > 1
                else ""
            )
            + ")"
        )
    if "fits" in m:
        verdict = "fits" if m["fits"] else "does NOT fit"
        lines.append(
            f"  model states {verdict} a {m['gpu_memory_gb']:g} GB GPU"
            + (
                f"; with activations they {'fit' if m['fits_with_activations'] else 'do NOT fit'}"
                if "fits_with_activations" in m
                else ""
            )
        )
    return lines


def render_text(result: dict) -> str:
    """The plan as a readable table."""
    p = result["params"]
    lines = [f"{'module':<10} {'total':>15} {'trainable':>15}"]
    for name, m in p["modules"].items():
        lines.append(f"{name:<10} {m['total']:>15,} {m['trainable']:>15,}")
    lines.append(f"{'all':<10} {p['total']:>15,} {p['trainable']:>15,}")
    if result["image_tokens"]:
        lines += ["", f"{'image size':<14} {'grid':>8} {'views':>6} {'tokens':>8}"]
        for row in result["image_tokens"]:
            size = "x".join(map(str, row["size"]))
            grid = "x".join(map(str, row["grid"]))
            lines.append(f"{size:<14} {grid:>8} {row['views']:>6} {row['tokens']:>8}")
    if "data" in result:
        d = result["data"]
        lines += [
            "",
            f"data: {d['samples']} sampled records, {d['over_max_length']} over max_length={d['max_length']}",
        ]
        for key in ("image_tokens", "total_tokens"):
            dist = d[key]
            lines.append(
                f"  {key:<13} min {dist['min']}  median {dist['median']}  p95 {dist['p95']}  max {dist['max']}"
            )
        if d["skipped"]:
            lines.append(f"  skipped: {d['skipped']}")
    if "memory" in result:
        lines += ["", *memory_lines(result["memory"])]
    lines += ["", *(f"warning: {w}" for w in result["warnings"])]
    return "\n".join(lines).rstrip()
