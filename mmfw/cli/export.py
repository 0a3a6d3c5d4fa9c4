"""``mmfw-export run=<run dir> format=hf_llava|hf_llava_next|mmfw out=<dir> [ckpt=last]
[dtype=auto] [max_shard_size=5GB] [overwrite=false]``.

Keys:
  run: the folder mmfw-train wrote (or a format=mmfw export).
  format: hf_llava (pad/fixed resolution), hf_llava_next (anyres): transformers'
    LlavaForConditionalGeneration / LlavaNextForConditionalGeneration with config.json,
    safetensors weights and the processor (image processor, tokenizer with the image token
    and chat template); loads with AutoModelForImageTextToText / AutoProcessor and
    trust_remote_code=False. mmfw: safetensors + resolved config + tokenizer, for any model,
    loadable by mmfw.runs.load_run and mmfw-eval run=<out>.
  out: the folder to write (must be new or empty unless overwrite=true).
  ckpt: last | a checkpoint path (file or sharded folder).
  dtype: auto (the LLM's yaml dtype) | float32 | bfloat16 | float16 (hf formats).
  max_shard_size: weights above this are split into shards with an index (e.g. 5GB, 500MB).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from mmfw.errors import ConfigProblems, run_reporting  # noqa: E402

COMMAND = "mmfw-export"
DEFAULTS = {"ckpt": "last", "dtype": "auto", "max_shard_size": "5GB", "overwrite": "false"}
REQUIRED = ("run", "format", "out")


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``key=value`` arguments over the defaults, and the problems found."""
    values, problems = dict(DEFAULTS), []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in (*REQUIRED, *DEFAULTS):
            problems.append(
                f"{arg}: not a key=value of {', '.join((*REQUIRED, *DEFAULTS))} (see --help)"
            )
            continue
        values[key] = value
    problems += [f"{k}: missing; give {k}=..." for k in REQUIRED if not values.get(k)]
    return values, problems


def validate(values: dict[str, str], problems: list[str]) -> None:
    """Every problem of the command at once (ConfigProblems), before anything is read."""
    from omegaconf import OmegaConf

    from mmfw.export.hf_support import FORMATS
    from mmfw.export.run_export import DTYPES
    from mmfw.validate import Checker, check_run

    if any(not values.get(k) for k in REQUIRED):
        raise ConfigProblems(problems)
    checker = Checker(OmegaConf.create({"run": values["run"], "ckpt": values["ckpt"]}))
    check_run(checker)
    problems += checker.problems
    if values["format"] not in FORMATS:
        problems.append(f"format={values['format']}: use one of {', '.join(FORMATS)}")
    if values["dtype"] not in ("auto", *DTYPES):
        problems.append(f"dtype={values['dtype']}: use auto, {', '.join(DTYPES)}")
    if values["overwrite"] not in ("true", "false"):
        problems.append(f"overwrite={values['overwrite']}: use true or false")
    out = Path(values["out"])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if values["overwrite"] != "true":
            problems.append(
                f"out={out}: exists and is not empty; choose a new folder or set overwrite=true"
            )
        elif not (out / "export.json").exists():  # overwrite deletes only an earlier export
            problems.append(
                f"out={out}: holds files that are not an mmfw export; choose a new folder"
            )
    if problems:
        raise ConfigProblems(problems)


def job(argv: list[str]) -> dict:
    from mmfw.export.run_export import export_run

    values, problems = parse(argv)
    validate(values, problems)
    info = export_run(
        values["run"],
        values["format"],
        values["out"],
        ckpt=values["ckpt"],
        dtype=values["dtype"],
        max_shard_size=values["max_shard_size"],
        overwrite=values["overwrite"] == "true",
    )
    print(json.dumps(info, indent=2))
    print(f"mmfw-export: wrote {values['out']} ({values['format']})", file=sys.stderr)
    return info


def main() -> None:
    argv = sys.argv[1:]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    run_reporting(COMMAND, lambda: job(argv))


if __name__ == "__main__":
    main()
