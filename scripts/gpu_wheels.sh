#!/usr/bin/env bash
# Builds .whl/ (git-ignored): what the GPU check imports beyond the GPU machine's own packages,
# as wheels for CPython 3.12 on x86-64 Linux, at the versions installed here (pyproject's
# pins). docs/gpu.md says why each is carried and how the folder travels (`carry: [".whl"]`).
#   scripts/gpu_wheels.sh [DEST]        (make gpu-wheels)
# Prints the wheels, their total size and that of the tree that travels with them (< 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
DEST="${1:-.whl}"
LIMIT=$((56 * 1024 * 1024))  # well under the device tool's 64 MiB for tree + wheels

# Not on the GPU machine (hydra, omegaconf, deepspeed and their needs), or there at another
# version than pyproject's (transformers 5.17 there; peft and timm unknown: small, so pinned).
# Not carried, since the check never imports them: wandb (logger=csv), litdata, av, optuna,
# submitit; the machine has torch, lightning, tokenizers, huggingface_hub, safetensors, numpy,
# pillow, pyarrow, scipy, matplotlib, pyyaml, einops, msgpack, ninja, psutil, py-cpuinfo, tqdm.
DOWNLOAD=(hydra-core omegaconf transformers peft timm hjson pydantic pydantic_core
          annotated-types typing-inspection typing_extensions)
# Source-only on the registry: built here, pure Python (deepspeed with its ops disabled: they
# are compiled just in time on the GPU machine where a test needs one, e.g. cpu_adam).
BUILD=(antlr4-python3-runtime deepspeed)

version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }

rm -rf "$DEST" && mkdir -p "$DEST"
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
for name in "${DOWNLOAD[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]}" -d "$DEST" "$name==$(version "$name")" 2>&1 \
    | grep -v "is ignored: it is neither" || true
done
for name in "${BUILD[@]}"; do
  # --no-build-isolation: deepspeed's setup.py imports the torch installed here
  DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-cache-dir --no-build-isolation \
    -w "$DEST" "$name==$(version "$name")" 2>&1 | grep -v "is ignored: it is neither" || true
done

# Every wheel present, the built ones pure Python with no compiled op inside.
test "$(ls "$DEST"/*.whl | wc -l)" -eq $((${#DOWNLOAD[@]} + ${#BUILD[@]})) \
  || { echo "gpu_wheels: expected $((${#DOWNLOAD[@]} + ${#BUILD[@]})) wheels in $DEST"; exit 1; }
for name in antlr4_python3_runtime deepspeed; do
  whl=$(ls "$DEST"/"$name"-*-py3-none-any.whl) || { echo "gpu_wheels: $name is not py3-none-any"; exit 1; }
  if unzip -l "$whl" | grep -qE '\.(so|cu)$'; then echo "gpu_wheels: $whl holds compiled code"; exit 1; fi
done
# deepspeed installs and imports on this CPU without compiling anything
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$DEST"/deepspeed-*.whl
PYTHONPATH="$site" DS_ACCELERATOR=cpu "$PY" -c "
import sys, deepspeed
assert deepspeed.__file__.startswith(sys.argv[1]), deepspeed.__file__
print('gpu_wheels: deepspeed', deepspeed.__version__, 'imports from the wheel')" "$site" 2>&1 | tail -1

ls -l "$DEST" | awk 'NR > 1 {printf "  %9d  %s\n", $5, $9}'
wheels=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
echo "gpu_wheels: wheels $((wheels / 1024)) KiB + tree $((tree / 1024)) KiB = $(((wheels + tree) / 1024)) KiB (limit $((LIMIT / 1024)) KiB)"
test $((wheels + tree)) -lt $LIMIT || { echo "gpu_wheels: too large to travel"; exit 1; }
