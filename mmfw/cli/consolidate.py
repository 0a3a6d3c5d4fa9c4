"""``mmfw-consolidate <checkpoint> [--out FILE]``: one ``.ckpt`` file from a sharded checkpoint.

DeepSpeed (ZeRO-2/3) and FSDP2 runs save each checkpoint as a folder of per-rank shards. This
gathers the full float32 weights on the CPU and writes them, with the run's config and step, as
one file that ``torch.load`` / ``mmfw.runs.load_run`` / ``ckpt=`` read on any machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmfw-consolidate", description=__doc__)
    parser.add_argument("checkpoint", help="a checkpoint folder (or file) of an mmfw run")
    parser.add_argument("--out", help="output file (default: <checkpoint>.consolidated.ckpt)")
    args = parser.parse_args(argv)
    from mmfw.run_dir.checkpoints import consolidate, is_intact

    path = Path(args.checkpoint)
    if not path.exists():
        print(f"mmfw-consolidate: {path} does not exist", file=sys.stderr)
        return 2
    if not is_intact(path):
        print(f"mmfw-consolidate: {path} is incomplete or corrupt", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else path.with_name(path.name + ".consolidated.ckpt")
    consolidate(path, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
