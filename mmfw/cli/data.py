"""``mmfw-data``: prepare training data at scale.

mmfw-data convert <llava json|jsonl> <out folder> [--image-root DIR] [--chunk-bytes 64MB]
    [--workers N] [--overwrite]
    Writes the records with their images embedded as litdata chunks; train on it with
    data=llava_sharded data.sources.main.path=<out folder>.
mmfw-data index <llava json|jsonl> ...
    Builds the lazy record index now (training builds it on first use otherwise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mmfw-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="LLaVA JSON → sharded litdata folder")
    conv.add_argument("source", help="a LLaVA .json (list) or .jsonl file")
    conv.add_argument("out", help="the output folder (new or empty)")
    conv.add_argument(
        "--image-root", help="folder the image paths are relative to (default: the file's)"
    )
    conv.add_argument("--chunk-bytes", default="64MB", help="size of each chunk file")
    conv.add_argument("--workers", type=int, default=1, help="conversion processes")
    conv.add_argument(
        "--overwrite", action="store_true", help="replace what is in the output folder"
    )
    idx = sub.add_parser("index", help="build the lazy record index of JSON/JSONL files")
    idx.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            from mmfw.data.sharded import convert

            t0 = time.perf_counter()
            counts = convert(
                args.source,
                args.out,
                args.image_root,
                args.chunk_bytes,
                args.workers,
                args.overwrite,
            )
            print(
                f"wrote {counts['records']} records to {args.out} in {time.perf_counter() - t0:.1f} s "
                f"({counts['images_embedded']} images embedded, {counts['images_missing']} not found: "
                "those records keep their paths and are skipped as missing_image)"
            )
            print(
                f"train on it: data=llava_sharded data.sources.main.path={Path(args.out).resolve()}"
            )
        else:
            from mmfw.data.record_index import IndexedRecords

            for f in args.files:
                t0 = time.perf_counter()
                records = IndexedRecords(f)
                print(
                    f"{f}: {len(records)} records, index {records.index_dir} ({time.perf_counter() - t0:.1f} s)"
                )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"mmfw-data: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
