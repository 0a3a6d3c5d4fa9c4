#!/usr/bin/env bash
# IXC2-4KHD's token-merge ablation at toy scale: 2x2 concat (token_merge) vs C-Abstractor vs
# resampler, all compressing 64 view tokens to 16, 3 seeds each.
source "$(dirname "$0")/../study.sh"
run_study ixc_token_merge synthetic_magnifier -- \
  experiment=study_ixc_token_merge connector=token_merge,tiny_c_abstractor,tiny_resampler \
  seed=0,1,2 logger=csv trainer.enable_progress_bar=false "$@"
