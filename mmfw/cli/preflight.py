"""Checks ``mmfw-train`` makes before Hydra creates or touches any run directory.

- the overrides compose (a typo gets "did you mean" instead of Hydra's "+key=value" hint), with
  the user's config folders (``hydra.searchpath``, ``--config-dir`` / ``--config-name``) as
  Hydra will compose them; a syntax error names the override and the fix;
- every value and input path is valid (``mmfw.validate``), for every job of a sweep;
- a run directory that already holds a run is never overwritten: continuing it needs
  ``resume=auto``; ``resume=auto`` without ``hydra.run.dir`` finds the newest unfinished run of
  the same ``name``.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import warnings
from pathlib import Path

from hydra.errors import ConfigCompositionException, HydraException
from omegaconf import OmegaConf, open_dict

from mmfw.cli.argv import Overrides, syntax_hint
from mmfw.cli.argv import split_argv as split_argv  # the CLIs import it from here
from mmfw.config import CONF_DIR, group_choices, user_search_path
from mmfw.errors import ConfigProblems, UserError


def override_value(overrides: list[str], key: str) -> str | None:
    """The value a ``key=value`` override gives (the last one wins, as in Hydra)."""
    found = None
    for o in overrides:
        k, _, v = o.lstrip("+~").partition("=")
        if k == key and _:
            found = v.strip("'\"")
    return found


def job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Every job's overrides (a sweep expanded as Hydra's basic sweeper would), each with the
    command's flags (:class:`Overrides`); ``hydra.*`` overrides are left out (they do not
    change the job's config) except ``hydra.searchpath``, which says where choices are.
    Sweeps of other sweepers (optuna's intervals) are validated with their parameter left
    at its default."""
    like = overrides.like if isinstance(overrides, Overrides) else list
    own = [o for o in overrides if is_searchpath(o) or not is_hydra(o)]
    if not multirun:
        return [like(own)]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    plain, sweeps = [], []
    for o in own:
        try:
            parsed = parser.parse_override(o)
        except Exception:  # noqa: BLE001 - composition reports it with the key
            plain.append(o)
            continue
        (sweeps if parsed.is_sweep_override() else plain).append(o)
    try:
        batches = BasicSweeper.split_arguments(parser.parse_overrides(sweeps), None)
        jobs = [[*plain, *job] for batch in batches for job in batch]
    except Exception:  # noqa: BLE001 - e.g. interval(...) sweeps: validate the rest
        jobs = [plain]
    return [like(job) for job in jobs[:64] or [plain]]


def is_hydra(override: str) -> bool:
    return override.lstrip("+~").startswith(("hydra.", "hydra/"))


def is_searchpath(override: str) -> bool:
    return override.lstrip("+~").partition("=")[0] == "hydra.searchpath"


def compose_checked(
    overrides: list[str], config_name: str = "train", return_hydra_config: bool = False
):
    """The composed config, or a :class:`UserError` that says which key and what exists.
    ``--config-dir`` / ``--config-name`` of an :class:`Overrides` are honoured, as is
    ``hydra.searchpath``; ``return_hydra_config`` keeps the ``hydra`` node."""
    import mmfw

    bad = getattr(overrides, "bad_flags", ())
    if bad:
        raise UserError("\n".join(bad))
    config_dir = getattr(overrides, "config_dir", None)
    config_name = getattr(overrides, "config_name", None) or config_name
    try:
        with warnings.catch_warnings():  # a missing searchpath folder: the hint below says so
            warnings.simplefilter("ignore", UserWarning)
            return mmfw.compose(
                list(overrides),
                config_name=config_name,
                config_dir=config_dir,
                return_hydra_config=return_hydra_config,
            )
    except (ConfigCompositionException, HydraException) as e:
        raise UserError(
            explain_composition_error(str(e), overrides, config_name, config_dir)
        ) from None


def explain_composition_error(
    message: str, overrides: list[str], config_name: str, config_dir: str | None = None
) -> str:
    """Hydra's message plus what the user most likely meant."""
    first = message.strip().splitlines()[0] if message.strip() else message
    syntax = syntax_hint(list(overrides)) if "override_grammar" in message else None
    if syntax:
        return syntax
    key = re.search(r"Could not override '([^']+)'", message)
    if key:
        return first + "\n" + suggest_key(key.group(1), overrides, config_name, config_dir)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", message)
    if missing:
        group, choice = missing.groups()
        return no_such_choice(group, choice, user_search_path(overrides, config_name, config_dir))
    return message.strip()


def no_such_choice(group: str, choice: str, searchpath: list[str]) -> str:
    """``group=choice: no such choice``, the closest choice, and every choice by folder."""
    options = sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))
    found = {path: group_choices(group, path) for path in searchpath}
    every = options + [c for names in found.values() for c in names or []]
    close = difflib.get_close_matches(choice, every, n=3, cutoff=0.4)
    hint = f"did you mean {group}={close[0]}? " if close else ""
    listed = f"Choices of {group}: {', '.join(options)}"
    for path, names in found.items():
        listed += f"; in {path}: " + (
            ", ".join(names) if names else "none" if names is not None else "(no such folder)"
        )
    return f"{group}={choice}: no such choice. {hint}{listed}"


def suggest_key(
    key: str, overrides: list[str], config_name: str, config_dir: str | None = None
) -> str:
    """'did you mean' for an override key that is not in the config."""
    import mmfw

    parent, _, leaf = key.rpartition(".")
    rest = [o for o in overrides if o.lstrip("+~").partition("=")[0] != key]
    try:
        cfg = mmfw.compose(rest, config_name=config_name, config_dir=config_dir)
    except HydraException:
        return "(the other overrides do not compose either)"
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if node is None or not OmegaConf.is_dict(node):
        groups = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir())
        close = difflib.get_close_matches(parent or key, [*groups, *cfg.keys()], n=3, cutoff=0.5)
        return f"'{parent}' is not a config node" + (f"; did you mean {close[0]}?" if close else "")
    keys = [str(k) for k in node]
    close = difflib.get_close_matches(leaf, keys, n=3, cutoff=0.5)
    where = parent or "the top level"
    if close:
        return f"did you mean {parent + '.' if parent else ''}{close[0]}? Keys of {where}: {', '.join(keys)}"
    return f"{leaf!r} is not a key of {where} (keys: {', '.join(keys)}); to add a new key use +{key}=..."


def validate_command(overrides: list[str], config_name: str, validator) -> None:
    """Compose ``config_name`` with the job's overrides and raise every problem
    ``validator(cfg)`` finds (mmfw-eval, mmfw-plan)."""
    cfg = compose_checked(job_overrides(overrides, False)[0], config_name)
    problems = validator(cfg)
    if problems:
        raise ConfigProblems(problems)


def validate_jobs(overrides: list[str], multirun: bool) -> None:
    """Compose and validate every job; raise with every problem found."""
    from mmfw.validate import validate_train

    problems: list[str] = []
    for job in job_overrides(overrides, multirun):
        cfg = compose_checked(job)
        for p in validate_train(cfg):
            if p not in problems:
                problems.append(p)
    if problems:
        raise ConfigProblems(problems)


# -- run directories ---------------------------------------------------------------------------


def describe(run_dir: Path) -> str:
    from mmfw.run_dir.record import RunRecord

    data = RunRecord(run_dir).read()
    if not data:
        return "an mmfw run"
    bits = [f"a {data.get('status', 'unknown')} run"]
    if data.get("started"):
        bits.append(f"started {data['started']}")
    if data.get("step") is not None:
        bits.append(f"step {data['step']}")
    return ", ".join(bits)


def holds_run(run_dir: Path) -> bool:
    return (run_dir / "run.json").exists() or (run_dir / "checkpoints").is_dir()


def alive(run_dir: Path) -> bool:
    """True when run.json names a process on this host that still runs."""
    from mmfw.run_dir.record import RunRecord

    data = RunRecord(run_dir).read()
    pid = data.get("pid")
    if data.get("status") != "running" or not pid or data.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


def guard_run_dir(overrides: list[str], multirun: bool) -> str | None:
    """Refuse to start over an existing run; find the run ``resume=auto`` continues.
    Returns a ``hydra.run.dir=...`` override to add, or None."""
    resume = override_value(overrides, "resume")
    if multirun:
        sweep = override_value(overrides, "hydra.sweep.dir")
        if sweep and resume is None:
            taken = sorted(p for p in Path(sweep).glob("*") if p.is_dir() and holds_run(p))
            if taken:
                raise UserError(
                    f"hydra.sweep.dir={sweep} already holds {len(taken)} run(s) ({taken[0]}: "
                    f"{describe(taken[0])}); add resume=auto to continue them, or choose a new "
                    "hydra.sweep.dir"
                )
        if sweep and resume is not None and override_value(overrides, "hydra.sweep.subdir") is None:
            # Jobs land in <sweep>/<job number>, in the order the basic sweeper expands them.
            for num, job in enumerate(job_overrides(overrides, True)):
                check_resume_into(Path(sweep) / str(num), job, f"hydra.sweep.dir={sweep}/{num}")
        return None
    explicit = override_value(overrides, "hydra.run.dir")
    check_writable(Path(explicit) if explicit else None, overrides)
    if explicit:
        run_dir = Path(explicit)
        if holds_run(run_dir):
            if resume is None:
                raise UserError(
                    f"hydra.run.dir={explicit} already holds {describe(run_dir)}; nothing was "
                    "changed. Add resume=auto to continue it, or choose a new hydra.run.dir"
                )
            if alive(run_dir):
                raise UserError(f"hydra.run.dir={explicit} is still running ({describe(run_dir)})")
            check_resume_into(
                run_dir, job_overrides(overrides, False)[0], f"hydra.run.dir={explicit}"
            )
        return None
    if resume != "auto":
        return None
    found = newest_unfinished(overrides)
    if found is None:
        print(
            "mmfw-train: resume=auto: no unfinished run of this name to continue; starting a new run"
        )
        return None
    check_resume_into(found, job_overrides(overrides, False)[0], f"resume=auto: {found}")
    print(f"mmfw-train: resume=auto: continuing {found} ({describe(found)})")
    return f"hydra.run.dir={found}"


def check_writable(run_dir: Path | None, overrides: list[str]) -> None:
    """The run directory (or, for a new one, the folder it will be made in) must be writable
    by this user before anything starts: Hydra's log and the run's files go there."""
    if run_dir is None:
        cfg = compose_checked(job_overrides(overrides, False)[0])
        run_dir = Path(str(OmegaConf.select(cfg, "paths.runs"))).expanduser()
        key = "paths.runs"
    else:
        key = "hydra.run.dir"
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"{key}={run_dir}: {existing} is not writable by this user; nothing was started. "
            "Choose a folder you can write (hydra.run.dir=... or paths.runs=...)"
        )


def check_resume_into(run_dir: Path, overrides: list[str], where: str) -> None:
    """Refuse, before anything is written, a resume whose model differs from the run's."""
    from mmfw.training.run_compat import check_resumable, resolved

    if not (run_dir / "run.json").exists() or not (run_dir / ".hydra" / "config.yaml").exists():
        return
    cfg = compose_checked(overrides, return_hydra_config=True)
    choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items()}
    with open_dict(cfg):
        del cfg["hydra"]
    check_resumable(run_dir, resolved(cfg), choices, where)


def newest_unfinished(overrides: list[str]) -> Path | None:
    """The most recently started unfinished run of the same ``name`` under ``paths.runs``."""
    from mmfw.run_dir.record import RunRecord

    cfg = compose_checked(job_overrides(overrides, False)[0])
    root = Path(str(OmegaConf.select(cfg, "paths.runs"))).expanduser() / str(cfg.name)
    candidates = []
    for record in root.glob("*/run.json"):
        data = RunRecord(record.parent).read()
        if data.get("status") != "finished" and not alive(record.parent):
            candidates.append(
                (str(data.get("started") or ""), record.stat().st_mtime, record.parent)
            )
    return max(candidates)[2] if candidates else None
