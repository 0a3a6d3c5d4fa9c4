"""Where the configs live and how to compose them exactly as the CLI does."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf


def conf_dir() -> Path:
    """``conf/`` of the source tree (editable install) or the copy inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "train.yaml").exists():
            return candidate
    raise FileNotFoundError(f"no conf/ with train.yaml next to {here}")


CONF_DIR = str(conf_dir())


def attempt_subdir(run_dir: str) -> str:
    """Where Hydra keeps an attempt's config, overrides and hydra.yaml (``hydra.output_subdir``):
    ``.hydra`` for a run's first attempt, ``.hydra/attempts/<n>`` for its n-th, so a resume
    never overwrites what the run was started with."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return ".hydra"
    try:
        attempts = json.loads(path.read_text()).get("attempts", 1)
    except (OSError, ValueError):
        attempts = 1
    count = len(attempts) if isinstance(attempts, list) else 1
    return f".hydra/attempts/{count + 1}"


def eval_logs(run: str, out: str | None) -> str:
    """Where ``mmfw-eval`` keeps its logs: under ``out`` when given, else ``<run>/eval``."""
    return str(Path(out) / ".logs") if out else str(Path(run) / "eval" / ".logs")


if not OmegaConf.has_resolver("mmfw_eval_logs"):
    OmegaConf.register_new_resolver("mmfw_eval_logs", eval_logs)
if not OmegaConf.has_resolver("mmfw_attempt_subdir"):
    OmegaConf.register_new_resolver("mmfw_attempt_subdir", attempt_subdir)


def target_class(node) -> type | None:
    """The class a config node's ``_target_`` names (imported), or None when it names none
    that imports: rules ask the class (its attributes, its bases), not its name's spelling."""
    from hydra.utils import get_class

    target = node.get("_target_") if hasattr(node, "get") else None
    if not target:
        return None
    try:
        return get_class(str(target))
    except Exception:  # noqa: BLE001 - a bad target is reported where it is instantiated
        return None


def compose(
    overrides: list[str] | None = None,
    config_name: str = "train",
    config_dir: str | None = None,
    return_hydra_config: bool = False,
) -> DictConfig:
    """The config ``mmfw-train <overrides>`` would run with (unresolved, struct mode);
    ``return_hydra_config`` keeps the ``hydra`` node (its ``runtime.choices``).

    ``hydra.searchpath=[...]`` among the overrides (or in the primary config) adds folders of
    choices, as on the command line; ``config_dir`` is ``--config-dir`` (a folder searched
    after mmfw's ``conf/``, where ``config_name`` may live too)."""
    kw = {"overrides": list(overrides or []), "return_hydra_config": return_hydra_config}
    if config_dir is None and GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name=config_name, **kw)
    with _initialized(config_dir):
        return hydra_compose(config_name=config_name, **kw)


@contextmanager
def _initialized(config_dir: str | None) -> Iterator[None]:
    """Hydra initialised on mmfw's ``conf/`` (plus ``config_dir`` as ``--config-dir`` adds it)."""
    if config_dir is None:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            yield
        return
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra as GH
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    from mmfw.errors import UserError

    folder = Path(config_dir).expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"--config-dir {config_dir}: no such folder")
    backup = get_gh_backup()
    try:
        version.setbase("1.3")
        search = create_config_search_path(CONF_DIR)
        search.prepend(
            "command-line", f"file://{folder}", anchor=SearchPathQuery(provider="schema")
        )
        GH.instance().clear()
        Hydra.create_main_hydra2(task_name="app", config_search_path=search)
        yield
    finally:
        restore_gh_from_backup(backup)


def user_search_path(
    overrides: list[str], config_name: str = "train", config_dir: str | None = None
) -> list[str]:
    """The folders of choices a command adds to mmfw's ``conf/``: ``--config-dir``, then
    ``hydra.searchpath`` of the command line, else of the primary config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    paths = [f"file://{Path(config_dir).expanduser().resolve()}"] if config_dir else []
    given = None
    parser = OverridesParser.create()
    for o in overrides:
        if o.partition("=")[0].lstrip("+") == "hydra.searchpath":
            try:
                given = parser.parse_override(o).value()
            except Exception:  # noqa: BLE001 - composition reports the syntax itself
                continue
    if given is None:
        for folder in [*([config_dir] if config_dir else []), CONF_DIR]:
            primary = Path(folder).expanduser() / f"{config_name}.yaml"
            if primary.is_file():
                given = OmegaConf.select(OmegaConf.load(primary), "hydra.searchpath")
                break
    if isinstance(given, list) or OmegaConf.is_list(given):
        paths += [str(p) for p in given]
    return paths


def group_choices(group: str, path: str) -> list[str] | None:
    """The choices of ``group`` in one search-path entry (``file://``, ``pkg://`` or a plain
    folder); None when the entry does not exist."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.object_type import ObjectType

    scheme = path.split("://", 1)[0] if "://" in path else "file"
    try:
        source = SourcesRegistry.instance().resolve(scheme)("user", path)
    except Exception:  # noqa: BLE001 - an unknown scheme: nothing to list
        return None
    if not source.available():
        return None
    if not source.is_group(group):
        return []
    names = source.list(group, ObjectType.CONFIG)
    return sorted(os.path.basename(n) for n in names)
