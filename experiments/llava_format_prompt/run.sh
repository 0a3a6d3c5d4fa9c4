#!/usr/bin/env bash
# LLaVA-1.5's response-format prompt at toy scale: short-answer training questions marked with
# "Answer the question using a single word or phrase." or not, 5 seeds each (SEEDS=... for
# others); the report shows short-answer compliance and exact match with and without the
# prompt at test time.
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study llava_format_prompt open_with_prompt open_without_prompt synthetic_magnifier -- \
  experiment=study_llava_format_prompt \
  "synthetic.format_prompt='Answer the question using a single word or phrase.',null" \
  logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" open_with_prompt/accuracy
