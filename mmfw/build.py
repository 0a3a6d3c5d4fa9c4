"""Compose live objects from a config: tokenizer → model → processor (dimensions wired here)."""

from __future__ import annotations

import inspect
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mmfw.data.processor import ImageTokenCounter, SampleProcessor
from mmfw.data.templates.base import ChatTemplate
from mmfw.data.tokenizer import load_tokenizer
from mmfw.models.vlm import VisionLanguageModel
from mmfw.resolution.base import ResolutionStrategy


@dataclass
class Components:
    """Everything a run needs besides data and trainer."""

    tokenizer: object
    model: VisionLanguageModel
    strategy: ResolutionStrategy
    template: ChatTemplate
    processor: SampleProcessor


def build_model(
    cfg: DictConfig, strategy: ResolutionStrategy, vocab_size: int | None, image_token_id: int
) -> VisionLanguageModel:
    """Encoder, LLM, then the connector wired between their live widths.

    ``vocab_size`` comes from the tokenizer (None: the LLM config's own, for planning).
    Under ``torch.device("meta")`` nothing is allocated and no weights are read.
    """
    llm = instantiate(cfg.llm)(vocab_size=vocab_size)
    encoder = instantiate(cfg.encoder)
    if not isinstance(encoder, torch.nn.Module):  # an encoder whose width is the LLM's (Fuyu)
        encoder = encoder(out_dim=llm.config.hidden_size)
    connector = wire_connector(instantiate(cfg.connector), encoder, llm.config.hidden_size)
    fusion = instantiate(cfg.fusion)
    model = VisionLanguageModel(
        encoder=encoder,
        connector=connector,
        fusion=fusion,
        llm=llm,
        image_token_id=image_token_id,
        newline=strategy.needs_newline,
        separator=strategy.needs_separator,
        center_image_tokens=bool((cfg.get("model") or {}).get("center_image_tokens", False)),
    )
    for adapter in instantiate(cfg.stage).adapters.values():
        model.adapter_params.update(adapter.apply(model))
    return model


def wire_connector(partial_connector, encoder, llm_width: int):
    """Call the connector's partial with the live widths (and the encoder's native token
    grid for connectors that take ``in_grid``)."""
    kwargs = {"in_dim": encoder.out_dim, "out_dim": llm_width}
    if "in_grid" in inspect.signature(partial_connector.func).parameters:
        native = getattr(encoder, "image_size", None)
        if native is None:
            raise ValueError(
                "this connector needs the encoder's native image size (encoder.image_size)"
            )
        kwargs["in_grid"] = (native // encoder.patch_size, native // encoder.patch_size)
    return partial_connector(**kwargs)


def build_components(cfg: DictConfig, tokenizer, meta: bool = False) -> Components:
    """Tokenizer-wired model, resolution strategy, template and processor. ``meta=True``
    builds the model on the meta device (shapes only): training builds the real one later,
    inside the distributed strategy's context (``VLMModule.configure_model``)."""
    strategy = instantiate(cfg.resolution)
    template = instantiate(cfg.template)
    image_token_id = tokenizer.convert_tokens_to_ids(cfg.tokenizer.image_token)
    with torch.device("meta") if meta else nullcontext():
        model = build_model(cfg, strategy, len(tokenizer), image_token_id)
    counter = ImageTokenCounter(model.feature_grid, model.fusion.placeholders_per_image)
    processor = SampleProcessor(
        tokenizer=tokenizer,
        template=template,
        strategy=strategy,
        counter=counter,
        max_length=int(cfg.data.max_length),
        image_token=cfg.tokenizer.image_token,
        video_frames=int(cfg.data.get("video_frames", 8)),
        truncate=bool(cfg.data.get("truncate", False)),
    )
    return Components(tokenizer, model, strategy, template, processor)


def build_tokenizer(
    cfg: DictConfig, save_dir: Path, texts, inherit_from: Path | None = None
) -> object:
    """The run's tokenizer (reused from ``save_dir`` when present; copied from
    ``inherit_from``, the tokenizer of the run a stage starts from, when given)."""
    factory = instantiate(cfg.tokenizer)
    fixed = instantiate(cfg.template).texts_for_vocabulary()

    def corpus():
        # The template's fixed strings appear once per sample, as in the rendered training text.
        for text in texts():
            yield text
            yield from fixed

    return factory.load_or_build(save_dir, corpus, inherit_from)


def load_run_tokenizer(run_dir: Path) -> object:
    path = Path(run_dir) / "tokenizer"
    if not (path / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"{path} has no tokenizer: is {run_dir} an mmfw run directory?")
    return load_tokenizer(path)
