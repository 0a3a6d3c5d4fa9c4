"""A command line as Hydra reads it: ``key=value`` overrides, Hydra's own flags, and the hint
for what Hydra's parser would refuse (dash-style options, unbalanced brackets)."""

from __future__ import annotations

INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i",
              "--shell-completion", "-sc", "--resolve", "--package", "-p"}  # fmt: skip
MULTIRUN_FLAGS = {"-m", "--multirun"}
# Hydra's flags that take the next argument as their value (unless given as --flag=value).
VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun"}  # fmt: skip
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
HYDRA_FLAGS = INFO_FLAGS | MULTIRUN_FLAGS | VALUE_FLAGS | {"--run", "-r"}
BRACKETS = ("[]", "{}", "()")


class Overrides(list):
    """The ``key=value`` overrides of a command line, and what its flags add to composing them:
    ``config_dir`` (``--config-dir``: a folder searched before mmfw's ``conf/``),
    ``config_name`` (``--config-name``: the primary config) and ``bad_flags`` (dash-style
    arguments Hydra would refuse, each with its hint)."""

    def __init__(
        self,
        items=(),
        *,
        config_dir: str | None = None,
        config_name: str | None = None,
        bad_flags: tuple[str, ...] = (),
    ) -> None:
        super().__init__(items)
        self.config_dir = config_dir
        self.config_name = config_name
        self.bad_flags = tuple(bad_flags)

    def like(self, items) -> Overrides:
        """Other overrides (one job of a sweep) with the same flags."""
        return Overrides(
            items,
            config_dir=self.config_dir,
            config_name=self.config_name,
            bad_flags=self.bad_flags,
        )


def split_argv(argv: list[str]) -> tuple[Overrides, bool, bool]:
    """(overrides, multirun?, an info request that runs nothing?)"""
    out = Overrides()
    flags: set[str] = set()
    bad: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            out.append(arg)
            continue
        flag, eq, value = arg.partition("=")
        flags.add(flag)
        takes_next = i < len(argv) and not eq
        if flag in VALUE_FLAGS and takes_next:
            value, i = argv[i], i + 1
        elif flag in ("--info", "-i") and takes_next and argv[i] in INFO_CHOICES:
            i += 1
        elif flag not in HYDRA_FLAGS or (eq and flag not in VALUE_FLAGS | {"--info", "-i"}):
            # not Hydra's, or a switch given a value (--run=/x): what was meant is key=value
            given, hint_value = arg, value if eq else None
            if takes_next and not argv[i].startswith("-") and "=" not in argv[i]:
                given, hint_value, i = f"{arg} {argv[i]}", argv[i], i + 1
            bad.append(dash_hint(given, flag, hint_value))
        if flag in ("--config-dir", "-cd", "--config-path", "-cp"):
            out.config_dir = value
        elif flag in ("--config-name", "-cn"):
            out.config_name = value.removesuffix(".yaml")
    out.bad_flags = tuple(bad)
    return out, bool(flags & MULTIRUN_FLAGS), bool(flags & INFO_FLAGS)


def dash_hint(given: str, flag: str, value: str | None) -> str:
    """What to write instead of a dash-style option (``--experiment tiny_llava``)."""
    key = flag.lstrip("-")
    instead = f"{key}={value}" if value is not None else f"{key}=..."
    return (
        f"{given}: not an option; overrides are key=value with no dashes: {instead} "
        "(options: -m/--multirun, --cfg job, --config-dir DIR, --config-name NAME, --help)"
    )


def syntax_hint(overrides: list[str]) -> str | None:
    """The first override Hydra's grammar refuses, named, with what is wrong, or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for o in overrides:
        try:
            parser.parse_override(o)
        except HydraException as e:
            return f"override {o!r}: {describe_syntax(o, str(e))}"
    return None


def describe_syntax(override: str, message: str) -> str:
    """Why ``override`` does not parse, and the fix."""
    key, eq, value = override.partition("=")
    if not eq:
        return "an override is key=value (e.g. experiment=tiny_llava, trainer.max_steps=100)"
    for pair in BRACKETS:
        opened, closed = value.count(pair[0]), value.count(pair[1])
        if opened != closed:
            return (
                f"the brackets are unbalanced ({opened} '{pair[0]}', {closed} '{pair[1]}'): fix "
                f"them, or quote the value if it is text ({key}='\"{value}\"')"
            )
    line = next((ln for ln in message.splitlines() if ln and "Error parsing" not in ln), message)
    return (
        f"{line.strip()}; quote a value that holds special characters "
        f"({key}='\"{value}\"'), see https://hydra.cc/docs/advanced/override_grammar/basic/"
    )
