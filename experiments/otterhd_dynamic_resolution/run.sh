#!/usr/bin/env bash
# OtterHD's dynamic-resolution training at toy scale on a layout question (which quarter holds
# the small square): every batch at 40 px (fixed, 300 steps) or at one of 24/40/56 px (dynamic,
# 900 steps: the same 300 steps per size); 5 seeds each (SEEDS=... for others). Tested at the
# trained 40 px (at_40), at 32 and 48 px (at_32, at_48: sizes neither arm trained on, inside the
# dynamic range) and at the native 64 px (synthetic_magnifier: above every trained size).
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
ROOT="${MMFW_RUNS:-runs}/studies/otterhd_dynamic_resolution_$(date +%Y-%m-%d_%H-%M-%S)"
common=(experiment=study_otterhd_resolution logger=csv trainer.enable_progress_bar=false)
SWEEP_DIR=$ROOT/fixed study_sweep otterhd_dynamic_resolution -- "${common[@]}" \
  'resolution.sizes=[40]' trainer.max_steps=300 "$@"
SWEEP_DIR=$ROOT/dynamic study_sweep otterhd_dynamic_resolution -- "${common[@]}" \
  'resolution.sizes=[24,40,56]' trainer.max_steps=900 "$@"
SWEEP=$ROOT
REPORT_ARGS=(--baseline "resolution.sizes=[40]")
for run in "$SWEEP"/*/[0-9]*; do
  for size in 32 40 48; do
    .venv/bin/mmfw-eval "run=$run" "+resolution.eval_size=$size" "name=at_$size" > /dev/null
  done
done
study_report otterhd_dynamic_resolution at_32 at_40 at_48 synthetic_magnifier
.venv/bin/python experiments/summary.py "$REPORT" at_48/accuracy
