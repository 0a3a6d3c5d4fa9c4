"""Which transformers class an mmfw model maps to, and every part that has none.

transformers' ``LlavaForConditionalGeneration`` is CLIP/SigLIP vision tower → two-Linear
projector → any causal LM, images fused inline, one padded or resized square view;
``LlavaNextForConditionalGeneration`` adds anyres crops with unpadding and a newline
embedding. Everything else mmfw builds (resamplers, hyper attention, timm encoders, IXC's
HD layouts, Partial LoRA, ...) has no counterpart there and is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig
from torch import nn

from mmfw.errors import UserError
from mmfw.models.connectors.linear import LinearConnector
from mmfw.models.connectors.mlp import MLPConnector
from mmfw.models.encoders.hf_vision import HFVisionEncoder
from mmfw.models.fusion.inline import InlineFusion
from mmfw.models.hf_names import PROJECTOR_ACTIVATIONS
from mmfw.models.vlm import VisionLanguageModel
from mmfw.resolution.anyres import AnyRes
from mmfw.resolution.fixed import FixedResolution

FORMATS = ("hf_llava", "hf_llava_next", "mmfw")
VISION_TYPES = ("clip_vision_model", "siglip_vision_model")


class NotExportable(UserError):
    """The model has parts without a transformers counterpart (one line per part)."""


@dataclass
class HFArchitecture:
    """What the export writes: the class, projector, feature selection and image processing."""

    format: str
    projector_act: str  # ACT2FN name; "linear" marks a depth-1 connector (identity linear_2)
    feature_layer: int
    select_strategy: str  # "default" drops CLS, "full" keeps every token
    has_cls: bool
    image_size: int  # the views' side: fixed size, or anyres crop size
    resize_only: bool  # fixed "resize" (no pad-to-square)
    image_mean: list[float]
    image_std: list[float]
    interpolation: str  # bicubic | bilinear
    pinpoints: list[list[int]] | None = None

    @property
    def model_class(self) -> str:
        return (
            "LlavaNextForConditionalGeneration"
            if self.format == "hf_llava_next"
            else "LlavaForConditionalGeneration"
        )


def projector_activation(connector: nn.Module) -> str | None:
    """The ACT2FN name of a 2-layer MLP connector's activation, "linear" for one Linear,
    None when transformers' projector cannot express the connector."""
    if isinstance(connector, LinearConnector):
        return "linear"
    if not isinstance(connector, MLPConnector):
        return None
    layers = list(connector.mlp)
    if len(layers) == 1:
        return "linear"
    if len(layers) != 3:
        return None
    act = layers[1]
    found = (f"torch.nn.{type(act).__name__}", getattr(act, "approximate", None))
    return next((name for name, module in PROJECTOR_ACTIVATIONS.items() if module == found), None)


def describe(cfg: DictConfig, model: VisionLanguageModel, fmt: str) -> HFArchitecture:
    """The export plan for ``fmt`` (hf_llava | hf_llava_next), or NotExportable listing every
    part of ``cfg``/``model`` that transformers' class cannot run."""
    problems: list[str] = []
    enc = model.encoder
    mean = [float(x) for x in enc.image_mean.flatten().tolist()]
    if not isinstance(enc, HFVisionEncoder) or enc.model.config.model_type not in VISION_TYPES:
        problems.append(
            f"encoder ({cfg.encoder.get('_target_')}, {cfg.encoder.get('model_class', '')}): "
            "transformers' LLaVA runs a CLIP or SigLIP vision tower only"
        )
    act = projector_activation(model.connector)
    if act is None:
        problems.append(
            f"connector ({cfg.connector.get('_target_')}): transformers' projector is one or two "
            "Linear layers with a gelu/silu/relu activation (linear or mlp2x_gelu)"
        )
    if not isinstance(model.fusion, InlineFusion):
        problems.append(
            f"fusion ({cfg.fusion.get('_target_')}): transformers' LLaVA fuses images inline only"
        )
    if model.center_image_tokens:
        problems.append(
            "model.center_image_tokens: transformers' LLaVA does not subtract a view's mean "
            "image token"
        )
    if model.image_separator is not None:
        problems.append(
            "resolution: a separator embedding between image parts has no transformers counterpart"
        )
    from mmfw.config import target_class
    from mmfw.models.adapters.partial_lora import PartialLoRA

    classes = [target_class(a) for a in cfg.stage.get("adapters", {}).values()]
    if any(cls is not None and issubclass(cls, PartialLoRA) for cls in classes):
        problems.append(
            "stage.adapters: Partial LoRA applies only at image tokens; transformers' LLaVA has no such layer"
        )
    if bool(cfg.llm.get("trust_remote_code")):
        problems.append(
            f"llm ({cfg.llm.get('model_type') or cfg.llm.get('pretrained')}): needs remote code; "
            "the export must load with trust_remote_code=False"
        )
    strategy = _strategy(cfg)
    wanted = "hf_llava_next" if isinstance(strategy, AnyRes) else "hf_llava"
    if not isinstance(strategy, FixedResolution | AnyRes):
        problems.append(
            f"resolution ({cfg.resolution.get('_target_')}): transformers' LLaVA processors do "
            "one square view (fixed, pad) or LLaVA-NeXT anyres"
        )
    elif fmt != wanted:
        problems.append(
            f"format={fmt}: this run's resolution ({type(strategy).__name__}) exports as format={wanted}"
        )
    else:
        problems += _strategy_problems(strategy, mean)
    if (
        isinstance(strategy, AnyRes)
        and getattr(enc, "has_cls", False)
        and not getattr(enc, "drop_cls", True)
    ):
        problems.append(
            "encoder.drop_cls=false with a CLS token under anyres: LLaVA-NeXT's 'full' strategy "
            "keeps the CLS token in a crop's grid, which transformers cannot stitch"
        )
    if problems:
        raise NotExportable(
            f"this model cannot be exported as {fmt}; parts with no transformers counterpart:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nformat=mmfw exports any model (loadable by mmfw.runs.load_run / mmfw-eval)"
        )
    size = strategy.crop_size if isinstance(strategy, AnyRes) else strategy.size
    return HFArchitecture(
        format=fmt,
        projector_act=act,
        feature_layer=int(enc.select_layer),
        select_strategy="default" if enc.has_cls and enc.drop_cls else "full",
        has_cls=bool(enc.has_cls),
        image_size=int(size),
        resize_only=isinstance(strategy, FixedResolution) and strategy.aspect == "resize",
        image_mean=mean,
        image_std=[float(x) for x in enc.image_std.flatten().tolist()],
        interpolation=strategy.mode.value,
        pinpoints=[list(map(int, p)) for p in strategy.pinpoints]
        if isinstance(strategy, AnyRes)
        else None,
    )


def _strategy(cfg: DictConfig):
    from hydra.utils import instantiate

    return instantiate(cfg.resolution)


def _strategy_problems(strategy, image_mean) -> list[str]:
    """Preprocessing transformers' image processors do differently."""
    problems = []
    if strategy.mode.value not in ("bicubic", "bilinear"):
        problems.append(
            f"resolution.interpolation={strategy.mode.value}: transformers maps nearest to "
            "nearest-exact; use bicubic or bilinear"
        )
    if isinstance(strategy, FixedResolution) and strategy.aspect == "pad":
        hf_fill = tuple(int(m * 255) for m in image_mean)
        if tuple(strategy.fill) != hf_fill:
            problems.append(
                f"resolution.fill={list(strategy.fill)}: transformers pads with the encoder's "
                f"image_mean x 255 = {list(hf_fill)}; train with that fill"
            )
    if isinstance(strategy, AnyRes):
        if not strategy.newline or not strategy.unpad:
            problems.append(
                "resolution.newline/unpad=false: LLaVA-NeXT always unpads and ends rows with a newline"
            )
        if tuple(strategy.fill) != (0, 0, 0):
            problems.append(
                f"resolution.fill={list(strategy.fill)}: LLaVA-NeXT pads crops with black (0, 0, 0)"
            )
    return problems
