"""mmfw ↔ transformers LLaVA state-dict names (transformers 5's in-memory names).

encoder.model.<k>      ↔ model.vision_tower.<k>
connector.mlp.0 / .2   ↔ model.multi_modal_projector.linear_1 / linear_2
connector.proj         ↔ linear_1 (linear_2 = identity, projector_hidden_act "linear")
llm.model.<k>          ↔ model.language_model.<k>
llm.lm_head.weight     ↔ lm_head.weight
image_newline          ↔ model.image_newline
"""

from __future__ import annotations

import torch

PREFIXES = (
    ("encoder.model.", "model.vision_tower."),
    ("llm.model.", "model.language_model."),
    ("llm.lm_head.", "lm_head."),
    ("image_newline", "model.image_newline"),
)
PROJECTOR = "model.multi_modal_projector."
# transformers' projector activations (ACT2FN names) and the torch module with the same
# function: (class path, GELU's ``approximate``; None for modules without it).
PROJECTOR_ACTIVATIONS = {
    "gelu": ("torch.nn.GELU", "none"),
    "gelu_pytorch_tanh": ("torch.nn.GELU", "tanh"),
    "silu": ("torch.nn.SiLU", None),
    "relu": ("torch.nn.ReLU", None),
}


def to_hf_state_dict(
    state: dict[str, torch.Tensor], projector_act: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """HF-named tensors and the mmfw keys nothing maps to (LoRA must be merged first). A
    depth-1 connector gets an identity ``linear_2`` so transformers' two-layer projector
    computes the same function."""
    out, unmapped = {}, []
    for key, value in state.items():
        hf = _connector_to_hf(key) or _by_prefix(key, PREFIXES)
        if hf is None:
            unmapped.append(key)
        else:
            out[hf] = value
    if projector_act == "linear":
        width = out[PROJECTOR + "linear_1.weight"].shape[0]
        dtype = out[PROJECTOR + "linear_1.weight"].dtype
        out[PROJECTOR + "linear_2.weight"] = torch.eye(width, dtype=dtype)
        out[PROJECTOR + "linear_2.bias"] = torch.zeros(width, dtype=dtype)
    return out, unmapped


def from_hf_state_dict(
    hf_state: dict[str, torch.Tensor], linear_connector: bool
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """mmfw-named tensors from a LLaVA / LLaVA-NeXT state dict and the HF keys nothing maps
    to. ``linear_connector``: the mmfw model has one Linear (``connector.proj``); the
    checkpoint's ``linear_2`` must then be the identity, which is checked."""
    inverse = tuple((hf, mm) for mm, hf in PREFIXES)
    out, unmapped = {}, []
    for key, value in hf_state.items():
        if key.startswith(PROJECTOR):
            layer, _, leaf = key[len(PROJECTOR) :].partition(".")
            if linear_connector:
                if layer == "linear_1":
                    out[f"connector.proj.{leaf}"] = value
                elif not _is_identity_part(leaf, value):
                    unmapped.append(
                        f"{key} (not the identity: the checkpoint's projector has two layers)"
                    )
                continue
            index = {"linear_1": 0, "linear_2": 2}.get(layer)
            if index is None:
                unmapped.append(key)
            else:
                out[f"connector.mlp.{index}.{leaf}"] = value
            continue
        mm = _by_prefix(key, inverse)
        if mm is None:
            unmapped.append(key)
        else:
            out[mm] = value
    return out, unmapped


def _connector_to_hf(key: str) -> str | None:
    if key.startswith("connector.proj."):
        return PROJECTOR + "linear_1." + key[len("connector.proj.") :]
    if key.startswith("connector.mlp."):
        index, _, leaf = key[len("connector.mlp.") :].partition(".")
        layer = {"0": "linear_1", "2": "linear_2"}.get(index)
        return PROJECTOR + f"{layer}.{leaf}" if layer else None
    return None


def _by_prefix(key: str, pairs) -> str | None:
    for src, dst in pairs:
        if key == src or key.startswith(src + ("" if src.endswith(".") else ".")):
            return dst + key[len(src) :]
    return None


def _is_identity_part(leaf: str, value: torch.Tensor) -> bool:
    if leaf == "weight":
        return value.ndim == 2 and torch.equal(value.float(), torch.eye(value.shape[0]))
    return bool((value == 0).all())


def bake_position_embeddings(vision_tower, size: int) -> torch.Tensor:
    """The tower's position embeddings interpolated to ``size``-px views, as transformers'
    ``interpolate_pos_encoding`` computes them on the fly; stored in the export so its vision
    config can say ``image_size=size`` (transformers' LLaVA feeds crops at the native size)."""
    emb = vision_tower.embeddings
    width = emb.position_embedding.weight.shape[1]
    tokens = (size // emb.patch_size) ** 2 + (1 if hasattr(emb, "class_embedding") else 0)
    with torch.no_grad():
        probe = torch.zeros(1, tokens, width, dtype=emb.position_embedding.weight.dtype)
        return emb.interpolate_pos_encoding(probe, size, size)[0].clone()
