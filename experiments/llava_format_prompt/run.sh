#!/usr/bin/env bash
# LLaVA-1.5's response-format prompt at toy scale: short-answer training questions marked with
# "Answer the question using a single word or phrase." or not, 3 seeds each; the report shows
# short-answer compliance and exact match with and without the prompt at test time.
source "$(dirname "$0")/../study.sh"
run_study llava_format_prompt open_with_prompt open_without_prompt synthetic_magnifier -- \
  experiment=study_llava_format_prompt \
  "synthetic.format_prompt='Answer the question using a single word or phrase.',null" \
  seed=0,1,2 logger=csv trainer.enable_progress_bar=false "$@"
