"""Checks ``mmfw-train`` makes before Hydra creates or touches any run directory.

- the overrides compose (a typo gets "did you mean" instead of Hydra's "+key=value" hint);
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
from pathlib import Path

from hydra.errors import ConfigCompositionException, HydraException
from omegaconf import OmegaConf, open_dict

from mmfw.config import CONF_DIR
from mmfw.errors import ConfigProblems, UserError

INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i",
              "--shell-completion", "-sc", "--resolve", "--package", "-p"}  # fmt: skip
MULTIRUN_FLAGS = {"-m", "--multirun"}


def split_argv(argv: list[str]) -> tuple[list[str], bool, bool]:
    """(overrides, multirun?, an info request that runs nothing?)"""
    overrides = [a for a in argv if not a.startswith("-")]
    flags = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    return overrides, bool(flags & MULTIRUN_FLAGS), bool(flags & INFO_FLAGS)


def override_value(overrides: list[str], key: str) -> str | None:
    """The value a ``key=value`` override gives (the last one wins, as in Hydra)."""
    found = None
    for o in overrides:
        k, _, v = o.lstrip("+~").partition("=")
        if k == key and _:
            found = v.strip("'\"")
    return found


def job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Every job's overrides (a sweep expanded as Hydra's basic sweeper would); ``hydra.*``
    overrides are left out (they do not change the job's config). Sweeps of other
    sweepers (optuna's intervals) are validated with their parameter left at its default."""
    own = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    if not multirun:
        return [own]
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
    return jobs[:64] or [plain]


def compose_checked(
    overrides: list[str], config_name: str = "train", return_hydra_config: bool = False
):
    """The composed config, or a :class:`UserError` that says which key and what exists."""
    import mmfw

    try:
        return mmfw.compose(
            overrides, config_name=config_name, return_hydra_config=return_hydra_config
        )
    except (ConfigCompositionException, HydraException) as e:
        raise UserError(explain_composition_error(str(e), overrides, config_name)) from None


def explain_composition_error(message: str, overrides: list[str], config_name: str) -> str:
    """Hydra's message plus what the user most likely meant."""
    first = message.strip().splitlines()[0] if message.strip() else message
    key = re.search(r"Could not override '([^']+)'", message)
    if key:
        return first + "\n" + suggest_key(key.group(1), overrides, config_name)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", message)
    if missing:
        group, choice = missing.groups()
        options = sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))
        close = difflib.get_close_matches(choice, options, n=3, cutoff=0.4)
        hint = f"did you mean {group}={close[0]}? " if close else ""
        return f"{group}={choice}: no such choice. {hint}Choices of {group}: {', '.join(options)}"
    return message.strip()


def suggest_key(key: str, overrides: list[str], config_name: str) -> str:
    """'did you mean' for an override key that is not in the config."""
    import mmfw

    parent, _, leaf = key.rpartition(".")
    rest = [o for o in overrides if o.lstrip("+~").partition("=")[0] != key]
    try:
        cfg = mmfw.compose(rest, config_name=config_name)
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
    from mmfw.training.run_record import RunRecord

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
    from mmfw.training.run_record import RunRecord

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
    from mmfw.training.run_record import RunRecord

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
