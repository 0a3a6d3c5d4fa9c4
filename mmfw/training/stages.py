"""Training stages as data: what trains, at which learning rate, with which weight decay."""

from __future__ import annotations

import re

from torch import nn

MODULES = ("encoder", "connector", "fusion", "llm")
# Parameters that sit on the model itself belong to the vision→LLM interface.
OWNERS = {"image_newline": "connector", "image_separator": "connector"}
# Their names as stage sub-parts: `trainable: {connector.newline: true}`.
ALIASES = {"image_newline": "connector.newline", "image_separator": "connector.separator"}
# The index of a repeated block inside a parameter name (HF `layers.N`, timm `blocks.N`).
BLOCK = re.compile(r"\.(?:layers|blocks|layer|h)\.(\d+)\.")
# Parameters that never decay besides biases, norms and nn.Embedding tables: learned tokens
# and position embeddings.
NO_DECAY = (
    "newline",
    "separator",
    "cls_token",
    "class_embedding",
    "pos_embed",
    "position_embedding",
)


def module_of(param_name: str, owners: dict[str, str] | None = None) -> str:
    """Stage module ("encoder", "connector", "fusion", "llm") a parameter belongs to;
    ``owners`` (the model's ``param_owners``) overrides the top-level rule."""
    if owners and param_name in owners:
        return owners[param_name]
    head = param_name.split(".", 1)[0]
    return OWNERS.get(head, head)


def stage_path(param_name: str, owners: dict[str, str] | None = None) -> str:
    """The dotted name a stage's ``trainable`` rules match: ``connector.newline`` for the
    newline embedding, ``fusion.<name>`` for fusion parameters living inside the LLM, else
    the parameter name itself (``llm.model.embed_tokens.weight``)."""
    if param_name in ALIASES:
        return ALIASES[param_name]
    module = module_of(param_name, owners)
    return param_name if param_name.split(".", 1)[0] == module else f"{module}.{param_name}"


class Stage:
    """What trains and how fast.

    Yaml keys:
      trainable: module or sub-part → bool. The four modules (encoder, connector, fusion, llm)
        must be listed; dotted sub-parts refine them, the longest match wins, e.g.
        ``{connector: false, connector.newline: true}`` or ``{llm: false, llm.lm_head: true}``
        (sub-parts are parameter-name prefixes; ``connector.newline`` / ``connector.separator``
        name the layout embeddings). Frozen parameters get ``requires_grad=False`` and stay
        out of the optimiser.
      lr: base learning rate.
      lr_scale: module → multiplier of ``lr`` (e.g. ``llm: 0.2``); default 1.
      layer_decay: module → layer-wise lr decay (IXC: ``encoder: 0.9``): block i of L gets
        decay^(L−i), the embeddings before the first block decay^(L+1), what follows the last
        block 1.
      weight_decay_exclude: name fragments whose parameters never decay, besides biases and
        norms and embedding tables (default: newline/separator, CLS and position embeddings).
      gradient_checkpointing: modules (encoder, llm) whose blocks recompute activations in
        the backward pass.
      adapters: name → adapter (``lora``, ``partial_lora``) added to the model when it is
        built; adapter parameters train even inside a frozen module.
      init_from: a run directory or a ``.ckpt`` whose model weights this stage starts from
        (loaded strictly; null = fresh or pretrained weights).
      init_adapters: what happens to the adapters of ``init_from``: ``carry`` (this stage
        has the same adapters; they load as they are) or ``merge`` (LoRA deltas are folded
        into the base weights; Partial LoRA cannot be merged).
    """

    def __init__(
        self,
        *,
        trainable: dict[str, bool],
        lr: float,
        lr_scale: dict[str, float] | None = None,
        layer_decay: dict[str, float] | None = None,
        weight_decay_exclude: list[str] | None = None,
        gradient_checkpointing: list[str] | None = None,
        adapters: dict | None = None,
        init_from: str | None = None,
        init_adapters: str = "carry",
    ) -> None:
        for key in [*trainable]:
            if key.split(".", 1)[0] not in MODULES:
                raise ValueError(
                    f"stage.trainable key {key!r} names no module; start it with one of {MODULES}"
                )
        for group, keys in (
            ("lr_scale", lr_scale),
            ("layer_decay", layer_decay),
            ("gradient_checkpointing", gradient_checkpointing),
        ):
            for key in keys or []:
                if key not in MODULES:
                    raise ValueError(
                        f"stage.{group} key {key!r} is not a module; use one of {MODULES}"
                    )
        missing = [m for m in MODULES if m not in trainable]
        if missing:
            raise ValueError(
                f"stage.trainable lacks {missing}: say true or false for each of {MODULES}"
            )
        if lr <= 0:
            raise ValueError(f"stage.lr={lr} must be positive")
        for module, decay in (layer_decay or {}).items():
            if not 0 < float(decay) <= 1:
                raise ValueError(f"stage.layer_decay.{module}={decay} must be in (0, 1]")
        if init_adapters not in ("carry", "merge"):
            raise ValueError(f"stage.init_adapters={init_adapters!r}: use carry or merge")
        self.trainable = {k: bool(v) for k, v in trainable.items()}
        self.lr = float(lr)
        self.lr_scale = {m: float((lr_scale or {}).get(m, 1.0)) for m in MODULES}
        self.layer_decay = {m: float(v) for m, v in (layer_decay or {}).items()}
        self.no_decay = tuple(NO_DECAY if weight_decay_exclude is None else weight_decay_exclude)
        self.gradient_checkpointing = list(gradient_checkpointing or [])
        self.adapters = dict(adapters or {})
        self.init_from = str(init_from) if init_from else None
        self.init_adapters = init_adapters

    def is_trainable(self, path: str) -> bool:
        """The rule of the longest ``trainable`` key that is ``path`` or a dotted prefix of it."""
        best = max((k for k in self.trainable if path == k or path.startswith(k + ".")), key=len)
        return self.trainable[best]

    def freeze(self, model: nn.Module) -> None:
        """Set ``requires_grad`` of every parameter from ``trainable`` (before any wrapping);
        parameters the model never uses (``model.unused_parameters()``) stay frozen."""
        adapter_params = getattr(model, "adapter_params", set())
        owners = getattr(model, "param_owners", None)
        never = model.unused_parameters() if hasattr(model, "unused_parameters") else set()
        used = set(MODULES)
        for name, param in model.named_parameters():
            module = module_of(name, owners)
            if module not in MODULES:
                raise ValueError(f"parameter {name!r} belongs to no stage module {MODULES}")
            path = stage_path(name, owners)
            used.update(k for k in self.trainable if path == k or path.startswith(k + "."))
            trains = self.is_trainable(path) or name in adapter_params
            param.requires_grad_(trains and name not in never)
        unused = sorted(set(self.trainable) - used)
        if unused:
            raise ValueError(
                f"stage.trainable keys {unused} match no parameter of the model "
                "(sub-parts are parameter-name prefixes, e.g. llm.lm_head, connector.newline)"
            )

    def param_groups(self, model: nn.Module, weight_decay: float = 0.0) -> list[dict]:
        """Optimiser groups of the trainable parameters: one per (module, layer, decays?) with
        the module's lr, the layer-wise decay and the weight decay it gets."""
        owners = getattr(model, "param_owners", None)
        exempt = _no_decay_ids(model, self.no_decay)
        layer_ids = {m: _layer_ids(model, m, owners) for m in self.layer_decay}
        groups: dict[tuple[str, int, bool], dict] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            module = module_of(name, owners)
            lr = self.lr * self.lr_scale[module]
            layer = -1
            if module in self.layer_decay:
                layer, depth = layer_ids[module][name]
                lr *= self.layer_decay[module] ** (depth + 1 - layer)
            decays = id(param) not in exempt
            key = (module, layer, decays)
            if key not in groups:
                suffix = ("" if layer < 0 else f"_layer{layer}") + ("" if decays else "_no_decay")
                groups[key] = {
                    "params": [],
                    "lr": lr,
                    "weight_decay": weight_decay if decays else 0.0,
                    "name": f"{module}{suffix}",
                }
            groups[key]["params"].append(param)
        if not groups:
            raise ValueError("stage.trainable freezes every module: nothing would train")
        return list(groups.values())


def _no_decay_ids(model: nn.Module, fragments: tuple[str, ...]) -> set[int]:
    """Biases, every parameter of a norm or embedding layer, and names with a fragment."""
    ids = set()
    for module in model.modules():
        if isinstance(module, nn.Embedding) or "norm" in type(module).__name__.lower():
            ids.update(id(p) for p in module.parameters(recurse=False))
    for name, param in model.named_parameters():
        if param.ndim < 2 or any(f in name for f in fragments):
            ids.add(id(param))
    return ids


def _layer_ids(model: nn.Module, module: str, owners) -> dict[str, tuple[int, int]]:
    """Parameter name → (layer id, number of blocks) for one module: 0 before the first
    block, i+1 inside block i, blocks+1 after the last (the BEiT/IXC convention)."""
    names = [n for n, _ in model.named_parameters() if module_of(n, owners) == module]
    blocks = {n: int(m.group(1)) for n in names if (m := BLOCK.search(n))}
    depth = max(blocks.values(), default=-1) + 1
    ids, seen_block = {}, False
    for name in names:
        if name in blocks:
            seen_block = True
            ids[name] = (blocks[name] + 1, depth)
        else:
            ids[name] = (depth + 1 if seen_block else 0, depth)
    return ids
