#!/usr/bin/env bash
# OtterHD's dynamic-resolution training at toy scale: every batch at 40 px (fixed) or at one of
# 24/32/40 px (dynamic), 3 seeds each; tested at the native 64 px (synthetic_magnifier) and at
# 128 px (+resolution.eval_size=128: `at_128`), both above every trained size, and at 40 px.
source "$(dirname "$0")/../study.sh"
study_sweep otterhd_dynamic_resolution -- \
  experiment=study_otterhd_resolution 'resolution.sizes=[40],[24,32,40]' \
  seed=0,1,2 logger=csv trainer.enable_progress_bar=false "$@"
for run in "$SWEEP"/[0-9]*; do
  for size in 40 128; do
    .venv/bin/mmfw-eval "run=$run" "+resolution.eval_size=$size" "name=at_$size" > /dev/null
  done
done
study_report otterhd_dynamic_resolution at_40 synthetic_magnifier at_128
