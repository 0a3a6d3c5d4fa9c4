#!/usr/bin/env bash
# IXC2-4KHD's token-merge ablation at toy scale: 2x2 concat (token_merge) vs C-Abstractor vs
# resampler, all compressing 64 view tokens to 16, each in a data-limited regime (512 training
# images, ~19 epochs) and an abundant one (9600, one epoch); 5 seeds each (SEEDS=... for others).
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study ixc_token_merge synthetic_magnifier -- \
  experiment=study_ixc_token_merge connector=token_merge,tiny_c_abstractor,tiny_resampler \
  synthetic.num_train=512,9600 logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" synthetic_magnifier/accuracy
