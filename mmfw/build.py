"""Compose live objects from a config: tokenizer → model → processor (dimensions wired here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    encoder = instantiate(cfg.encoder)
    llm = instantiate(cfg.llm)(vocab_size=vocab_size)
    connector = instantiate(cfg.connector)(in_dim=encoder.out_dim, out_dim=llm.config.hidden_size)
    fusion = instantiate(cfg.fusion)
    return VisionLanguageModel(
        encoder=encoder,
        connector=connector,
        fusion=fusion,
        llm=llm,
        image_token_id=image_token_id,
        newline=strategy.needs_newline,
        separator=strategy.needs_separator,
    )


def build_components(cfg: DictConfig, tokenizer) -> Components:
    strategy = instantiate(cfg.resolution)
    template = instantiate(cfg.template)
    image_token_id = tokenizer.convert_tokens_to_ids(cfg.tokenizer.image_token)
    model = build_model(cfg, strategy, len(tokenizer), image_token_id)
    counter = ImageTokenCounter(model.feature_grid, model.fusion.placeholders_per_image)
    processor = SampleProcessor(
        tokenizer=tokenizer,
        template=template,
        strategy=strategy,
        counter=counter,
        max_length=int(cfg.data.max_length),
        image_token=cfg.tokenizer.image_token,
    )
    return Components(tokenizer, model, strategy, template, processor)


def build_tokenizer(cfg: DictConfig, save_dir: Path, texts) -> object:
    """The run's tokenizer (reused from ``save_dir`` when present)."""
    factory = instantiate(cfg.tokenizer)
    fixed = instantiate(cfg.template).texts_for_vocabulary()

    def corpus():
        # The template's fixed strings appear once per sample, as in the rendered training text.
        for text in texts():
            yield text
            yield from fixed

    return factory.load_or_build(save_dir, corpus)


def load_run_tokenizer(run_dir: Path) -> object:
    path = Path(run_dir) / "tokenizer"
    if not (path / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"{path} has no tokenizer: is {run_dir} an mmfw run directory?")
    return load_tokenizer(path)
