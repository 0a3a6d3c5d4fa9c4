#!/usr/bin/env bash
# The demo study: sweep two connectors of the tiny LLaVA twin on the synthetic magnifier task,
# evaluate every run, write the config-diff report, and check accuracy is clearly above chance.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
SWEEP="${MMFW_RUNS:-runs}/demo/connector_sweep_$(date +%Y-%m-%d_%H-%M-%S)"

"$BIN/mmfw-train" -m experiment=tiny_llava connector=linear,mlp2x_gelu "hydra.sweep.dir=$SWEEP" "$@"
"$BIN/mmfw-report" "$SWEEP"
"$BIN/python" experiments/demo_connector/summary.py "$SWEEP"
