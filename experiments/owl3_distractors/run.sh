#!/usr/bin/env bash
# mPLUG-Owl3's Distractor Resistance at toy scale: accuracy with 0, 1 and 3 distractor images,
# hyper attention vs inline image tokens, 3 seeds each.
source "$(dirname "$0")/../study.sh"
run_study owl3_distractors distractor synthetic_magnifier -- \
  experiment=study_owl3_distractors fusion=tiny_hyper_attention,inline \
  seed=0,1,2 logger=csv trainer.enable_progress_bar=false "$@"
