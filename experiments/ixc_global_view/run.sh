#!/usr/bin/env bash
# IXC2-4KHD's global-view ablation at toy scale: the whole image as one extra 32-px view beside
# the crops, on or off, on images whose crop grid varies (1x2, 2x1, 1x3, 3x1, 2x2), each crop its
# own token map (experiment=study_global_view), asked in which quarter the small square is;
# 300 steps; 5 seeds (SEEDS=... for others).
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study ixc_global_view synthetic_magnifier -- \
  experiment=study_global_view resolution.global_view=true,false \
  logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" synthetic_magnifier/accuracy \
  --expect resolution.global_view=false=lower
