#!/usr/bin/env bash
# IXC2-4KHD's newline ablation at toy scale: learnable newline embeddings after every row of
# the global and stitched local maps, on or off, on images of varied aspect ratio (colour of
# the small object); 3 seeds each.
source "$(dirname "$0")/../study.sh"
run_study ixc_newline synthetic_magnifier -- \
  experiment=study_ixc_layout resolution.newline=true,false seed=0,1,2 \
  logger=csv trainer.enable_progress_bar=false "$@"
