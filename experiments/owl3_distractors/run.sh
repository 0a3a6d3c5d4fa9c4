#!/usr/bin/env bash
# mPLUG-Owl3's Distractor Resistance at toy scale: accuracy with 0, 1 and 3 distractor images,
# hyper attention vs inline image tokens; 5 seeds each (SEEDS=... for others).
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study owl3_distractors distractor synthetic_magnifier -- \
  experiment=study_owl3_distractors fusion=tiny_hyper_attention,inline \
  logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" distractor/n4/accuracy
