#!/usr/bin/env bash
# IXC2-4KHD's global-view ablation at toy scale: the whole image as one extra 32-px view before
# the crops, on or off, on images of varied aspect ratio (colour of the
# small object); 3 seeds each.
source "$(dirname "$0")/../study.sh"
run_study ixc_global_view synthetic_magnifier -- \
  experiment=study_ixc_layout resolution.global_view=true,false seed=0,1,2 \
  logger=csv trainer.enable_progress_bar=false "$@"
