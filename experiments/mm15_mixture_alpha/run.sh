#!/usr/bin/env bash
# MM1.5's mixture-ratio ablation at toy scale: the alpha of the "math" category (relative to
# "general") on the tiny LLaVA twin trained on the synthetic categories, 400 steps with centred
# image tokens; 5 seeds each (SEEDS=... for others). The report compares per-category accuracy.
# Extra arguments are more overrides.
STUDY_SEEDS=0,1,2,3,4
source "$(dirname "$0")/../study.sh"
run_study mm15_mixture_alpha math text_rich counting spatial multi_image synthetic_magnifier -- \
  experiment=tiny_categories 'data.sources.math.alpha=0.05,1.0' trainer.max_steps=400 \
  model.center_image_tokens=true logger=csv trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" math/accuracy
