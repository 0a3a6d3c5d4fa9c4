"""User-facing errors: what is wrong, with which key or file, and the fix — never a traceback.

A traceback is printed only with ``MMFW_DEBUG=1`` or ``HYDRA_FULL_ERROR=1``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(ValueError):
    """A mistake in the command, config or input files (not a bug in mmfw)."""


class ConfigProblems(UserError):
    """Every problem found in a config at once, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = "1 problem" if len(self.problems) == 1 else f"{len(self.problems)} problems"
        super().__init__(f"{head} in the config:\n" + "\n".join(f"  - {p}" for p in self.problems))


def debugging() -> bool:
    return os.environ.get("MMFW_DEBUG") == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Print ``<command>: error: <message>`` to stderr and exit."""
    lines = str(message).strip().splitlines() or ["(no message)"]
    print(f"{command}: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(line, file=sys.stderr)
    if not debugging():
        print("(MMFW_DEBUG=1 shows the traceback)", file=sys.stderr)
    raise SystemExit(code)


def user_facing(exc: BaseException) -> bool:
    """Errors whose message is the whole story for a user: bad values, paths, keys, files."""
    from hydra.errors import (
        ConfigCompositionException,
        InstantiationException,
        MissingConfigException,
    )
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(
        exc,
        UserError
        | ValueError
        | FileNotFoundError
        | NotADirectoryError
        | IsADirectoryError
        | PermissionError
        | KeyError
        | TypeError
        | ConfigCompositionException
        | InstantiationException
        | MissingConfigException
        | OmegaConfBaseException,
    )


WORKER_TRACEBACK = "Original Traceback (most recent call last):"


def message_of(exc: BaseException) -> str:
    """The exception's message; the cause's too for Hydra's instantiation wrapper; for an
    error re-raised from a DataLoader worker, the worker's own error line, not its traceback."""
    text = str(exc)
    if WORKER_TRACEBACK in text:
        return text.strip().splitlines()[-1]
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}\n{cause}"
    return text


def summary(exc: BaseException) -> str:
    """One line for run.json: the error's type and the line that says what happened."""
    line = (message_of(exc).strip().splitlines() or [""])[0]
    return (
        line
        if line.split(":", 1)[0].endswith(("Error", "Exception"))
        else f"{type(exc).__name__}: {line}"
    )[:500]


def run_reporting(command: str, fn: Callable[[], object]) -> object:
    """Run ``fn``; a user error exits 2 with its message and no traceback (1 for others,
    which keep their traceback: they are bugs to report)."""
    try:
        return fn()
    except SystemExit:
        raise
    except BaseException as e:
        if debugging() or not user_facing(e):
            raise
        fail(command, message_of(e), code=2)
