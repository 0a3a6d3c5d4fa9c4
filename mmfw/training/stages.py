"""Training stages as data: which modules train, at which learning rate."""

from __future__ import annotations

from torch import nn

MODULES = ("encoder", "connector", "fusion", "llm")
# Parameters that sit on the model itself belong to the vision→LLM interface.
OWNERS = {"image_newline": "connector", "image_separator": "connector"}


def module_of(param_name: str, owners: dict[str, str] | None = None) -> str:
    """Stage module ("encoder", "connector", "fusion", "llm") a parameter belongs to;
    ``owners`` (the model's ``param_owners``) overrides the top-level rule."""
    if owners and param_name in owners:
        return owners[param_name]
    head = param_name.split(".", 1)[0]
    return OWNERS.get(head, head)


class Stage:
    """What trains and how fast.

    Yaml keys:
      trainable: module → bool for encoder, connector, fusion, llm (frozen modules get
        ``requires_grad=False`` and are left out of the optimiser).
      lr: base learning rate.
      lr_scale: module → multiplier of ``lr`` (e.g. ``llm: 0.2``); default 1.
      adapters: name → adapter (``lora``, ``partial_lora``) added to the model when it is
        built; adapter parameters train even inside a frozen module.
    """

    def __init__(
        self,
        *,
        trainable: dict[str, bool],
        lr: float,
        lr_scale: dict[str, float] | None = None,
        adapters: dict | None = None,
    ) -> None:
        for key in [*trainable, *(lr_scale or {})]:
            if key not in MODULES:
                raise ValueError(f"stage key {key!r} is not a module; use one of {MODULES}")
        missing = [m for m in MODULES if m not in trainable]
        if missing:
            raise ValueError(
                f"stage.trainable lacks {missing}: say true or false for each of {MODULES}"
            )
        if lr <= 0:
            raise ValueError(f"stage.lr={lr} must be positive")
        self.trainable = {k: bool(v) for k, v in trainable.items()}
        self.lr = float(lr)
        self.lr_scale = {m: float((lr_scale or {}).get(m, 1.0)) for m in MODULES}
        self.adapters = dict(adapters or {})

    def freeze(self, model: nn.Module) -> None:
        """Set ``requires_grad`` of every parameter from ``trainable`` (before any wrapping)."""
        adapter_params = getattr(model, "adapter_params", set())
        owners = getattr(model, "param_owners", None)
        for name, param in model.named_parameters():
            module = module_of(name, owners)
            if module not in self.trainable:
                raise ValueError(f"parameter {name!r} belongs to no stage module {MODULES}")
            param.requires_grad_(self.trainable[module] or name in adapter_params)

    def param_groups(self, model: nn.Module, weight_decay: float = 0.0) -> list[dict]:
        """Optimiser groups of the trainable parameters, split by module (for its lr) and
        by decay: matrices decay; biases, norms and single vectors do not."""
        groups: dict[tuple[str, bool], list] = {}
        owners = getattr(model, "param_owners", None)
        for name, param in model.named_parameters():
            if param.requires_grad:
                groups.setdefault((module_of(name, owners), param.ndim >= 2), []).append(param)
        if not groups:
            raise ValueError("stage.trainable freezes every module: nothing would train")
        return [
            {
                "params": params,
                "lr": self.lr * self.lr_scale[module],
                "weight_decay": weight_decay if decay else 0.0,
                "name": f"{module}{'' if decay else '_no_decay'}",
            }
            for (module, decay), params in groups.items()
        ]
