#!/usr/bin/env bash
# IXC2-4KHD's global-view ablation at toy scale: the whole image as one extra 32-px view before
# the crops, on or off, on images whose crop grid varies (1x2, 2x1, 2x2), newline off, asked in
# which quarter the small square is; 600 steps (twice the recipe's 300: at 300 neither arm
# has converged); 5 seeds (SEEDS=... for others).
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study ixc_global_view synthetic_magnifier -- \
  experiment=study_ixc_layout resolution.newline=false resolution.global_view=true,false \
  trainer.max_steps=600 logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" synthetic_magnifier/accuracy
