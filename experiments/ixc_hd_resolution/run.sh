#!/usr/bin/env bash
# IXC2-4KHD's resolution ablation at toy scale (also `make demo`): at most 1, 4 or 9 crops
# (HD-1/4/9) of the dynamic image partition, 3 seeds each, magnifier colour accuracy; prints
# the report's path and its headline table. Extra arguments are more overrides.
source "$(dirname "$0")/../study.sh"
run_study ixc_hd_resolution synthetic_magnifier -- \
  experiment=study_ixc_hd resolution.max_crops=1,4,9 seed=0,1,2 \
  trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py experiments/ixc_hd_resolution/report \
  synthetic_magnifier/accuracy
