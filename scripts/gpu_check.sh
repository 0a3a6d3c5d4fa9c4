#!/usr/bin/env bash
# The GPU device check (docs/gpu.md): scripts/gpu_check.sh [--dry-run] OUT_DIR [options].
# PYTHON picks the interpreter to check (default: python3, the GPU machine's torch Python).
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
exec "$PY" scripts/gpu_check.py --python "$PY" "$@"
