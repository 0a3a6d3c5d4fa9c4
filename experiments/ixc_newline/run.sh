#!/usr/bin/env bash
# IXC2-4KHD's newline ablation at toy scale: learnable newline embeddings after every row of
# the stitched local map, on or off, on images whose crop grid varies (1x2, 2x1, 1x3, 3x1, 2x2)
# without a global view, asked the shape of the whole image, with a tower whose tokens do not
# say where they sit in the crop (experiment=study_ixc_newline); 5 seeds (SEEDS=... for others).
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study ixc_newline synthetic_magnifier -- \
  experiment=study_ixc_newline resolution.newline=true,false \
  logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" synthetic_magnifier/accuracy \
  --expect resolution.newline=false=lower
