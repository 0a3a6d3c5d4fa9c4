"""``model.init_from_hf``: start a recipe from a transformers LLaVA / LLaVA-NeXT checkpoint
(a llava-hf release, or an ``mmfw-export format=hf_llava[_next]`` folder).

The encoder and LLM are built from the checkpoint's vision and text configs (no separate
``pretrained`` weights are read), the tokenizer is the checkpoint's, and every weight is mapped
by name (``mmfw.models.hf_names``) and loaded strictly: a key either side leaves unmapped is an
error listing them. Recipe settings the checkpoint contradicts (feature layer, CLS handling,
projector, resolution kind) are errors naming the key and the value to set.
"""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from mmfw.errors import ConfigProblems, UserError
from mmfw.models.hf_names import PROJECTOR_ACTIVATIONS, from_hf_state_dict
from mmfw.training.init_from import few, fingerprint, gathered

TYPES = ("llava", "llava_next")
# transformers' projector activation → the class path a connector yaml can name (GELU's tanh
# form cannot be configured).
ACTIVATIONS = {
    name: path
    for name, (path, approximate) in PROJECTOR_ACTIVATIONS.items()
    if approximate != "tanh"
}
META_KEYS = {"transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype",
             "model_type", "output_hidden_states", "use_cache"}  # fmt: skip


def source_config(src: str):
    """The checkpoint's ``LlavaConfig`` / ``LlavaNextConfig`` (never runs remote code)."""
    from transformers import AutoConfig

    try:
        hf = AutoConfig.from_pretrained(str(src), trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise UserError(
            f"model.init_from_hf={src}: no transformers checkpoint there ({e}); give a folder "
            "with config.json (e.g. an mmfw-export format=hf_llava folder) or a cached hub id"
        ) from e
    if hf.model_type not in TYPES:
        raise UserError(
            f"model.init_from_hf={src}: a {hf.model_type!r} checkpoint; mmfw reads llava and "
            "llava_next ones (LlavaForConditionalGeneration, LlavaNextForConditionalGeneration)"
        )
    return hf


def source(cfg: DictConfig) -> str | None:
    """``model.init_from_hf`` of ``cfg`` (None: not set, or a config without ``model``)."""
    value = (cfg.get("model") or {}).get("init_from_hf")
    return str(value) if value else None


def with_hf_architecture(cfg: DictConfig) -> DictConfig:
    """``cfg`` with its encoder and LLM configs taken from the checkpoint and its tokenizer
    set to the checkpoint's (``cfg`` itself without ``model.init_from_hf``); ConfigProblems
    for every recipe setting the checkpoint contradicts."""
    src = source(cfg)
    if src is None:
        return cfg
    hf = source_config(src)
    problems = _contradictions(cfg, hf)
    if problems:
        raise ConfigProblems([f"model.init_from_hf={src}: {p}" for p in problems])
    vision, text = _plain(hf.vision_config), _plain(hf.text_config)
    text["vocab_size"] = int(hf.text_config.vocab_size)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(cfg):
        cfg.encoder.pretrained = None
        cfg.encoder.config = vision
        cfg.llm.pretrained = None
        cfg.llm.model_type = str(hf.text_config.model_type)
        cfg.llm.config = text
        cfg.tokenizer.pretrained = src
    return cfg


def _plain(config) -> dict:
    return {k: v for k, v in config.to_diff_dict().items() if k not in META_KEYS}


def _contradictions(cfg: DictConfig, hf) -> list[str]:
    problems = []
    model_class = cfg.encoder.get("model_class")
    wanted_type = hf.vision_config.model_type
    if not model_class or get_class(str(model_class)).config_class.model_type != wanted_type:
        problems.append(
            f"the checkpoint's vision tower is {wanted_type!r}; choose an encoder of that class "
            f"(encoder.model_class, now {model_class})"
        )
    layer = hf.vision_feature_layer
    if not isinstance(layer, int):
        problems.append(f"vision_feature_layer={layer}: mmfw selects one layer")
    elif int(cfg.encoder.get("select_layer", -2)) != layer:
        problems.append(f"set encoder.select_layer={layer} (the checkpoint's vision_feature_layer)")
    drop = hf.vision_feature_select_strategy == "default"
    if wanted_type == "siglip_vision_model" and drop:
        problems.append(
            "a SigLIP tower with the 'default' strategy drops a patch token; mmfw cannot"
        )
    elif bool(cfg.encoder.get("drop_cls", True)) != drop and wanted_type == "clip_vision_model":
        problems.append(
            f"set encoder.drop_cls={str(drop).lower()} (vision_feature_select_strategy="
            f"{hf.vision_feature_select_strategy})"
        )
    target = str(cfg.connector.get("_target_", ""))
    act = hf.projector_hidden_act
    if act == "linear":
        if not target.endswith("LinearConnector"):
            problems.append(
                "the projector is one Linear (projector_hidden_act=linear): set connector=linear"
            )
    elif act not in ACTIVATIONS:
        problems.append(f"projector_hidden_act={act} has no mmfw connector activation")
    elif (
        not target.endswith("MLPConnector")
        or int(cfg.connector.get("depth", 2)) != 2
        or str(cfg.connector.get("activation")) != ACTIVATIONS[act]
    ):
        problems.append(
            f"the projector is Linear-{act}-Linear: set connector=mlp2x_gelu "
            f"(connector.depth=2, connector.activation={ACTIVATIONS[act]})"
        )
    from mmfw.config import target_class
    from mmfw.models.fusion.inline import InlineFusion

    fusion = target_class(cfg.fusion)
    if fusion is None or not issubclass(fusion, InlineFusion):
        problems.append("LLaVA fuses images inline: set fusion=inline")
    resolution = str(cfg.resolution.get("_target_", ""))
    if hf.model_type == "llava_next":
        if not resolution.endswith("AnyRes"):
            problems.append("a LLaVA-NeXT checkpoint: set resolution=anyres (with its pinpoints)")
        elif not (cfg.resolution.get("newline", True) and cfg.resolution.get("unpad", True)):
            problems.append(
                "LLaVA-NeXT unpads and ends rows with a newline: set resolution.newline=true and resolution.unpad=true"
            )
    elif not resolution.endswith("FixedResolution"):
        problems.append(
            "a LLaVA checkpoint: set resolution to a fixed/pad strategy (e.g. resolution=pad_336)"
        )
    return problems


def load_hf_weights(model, src: str) -> dict:
    """Load the checkpoint's weights into ``model`` strictly; returns what was loaded."""
    from transformers import AutoModelForImageTextToText

    hf, info = AutoModelForImageTextToText.from_pretrained(
        str(src), trust_remote_code=False, output_loading_info=True
    )
    if info.get("missing_keys"):
        raise UserError(
            f"model.init_from_hf={src}: the checkpoint lacks weights {few(sorted(info['missing_keys']))}"
        )
    expected = set(model.state_dict())
    # Shapes from the live tensors; under ZeRO-3 a parameter is a partition that knows its
    # full shape as ds_shape.
    tensors = [*model.named_parameters(remove_duplicate=False), *model.named_buffers()]
    shapes = {k: tuple(getattr(v, "ds_shape", v.shape)) for k, v in tensors}
    state, unmapped = from_hf_state_dict(hf.state_dict(), "connector.proj.weight" in expected)
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected) + unmapped
    wrong = [
        f"{k} {tuple(v.shape)} vs {shapes[k]}"
        for k, v in state.items()
        if k in shapes and tuple(v.shape) != shapes[k]
    ]
    if missing or unexpected or wrong:
        raise UserError(
            f"model.init_from_hf={src} does not map onto this model: mmfw keys with no checkpoint "
            f"weight {few(missing)}, checkpoint keys with no mmfw weight {few(unexpected)}, "
            f"shapes that differ {few(wrong)}; the recipe must build the checkpoint's "
            "architecture (connector, resolution newline, adapters)"
        )
    with gathered(model):
        model.load_state_dict(state, strict=True)
    return {
        "path": str(src),
        "tensors": len(state),
        "sha256": fingerprint(state),
        "kind": "init_from_hf",
    }
