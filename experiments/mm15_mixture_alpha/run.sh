#!/usr/bin/env bash
# MM1.5's mixture-ratio ablation at toy scale: the alpha of the "math" category (relative to
# "general") on the tiny LLaVA twin trained on the synthetic categories, 3 seeds each; the
# report compares per-category accuracy as mean ± spread. Extra arguments are more overrides.
source "$(dirname "$0")/../study.sh"
run_study mm15_mixture_alpha math text_rich counting spatial multi_image synthetic_magnifier -- \
  experiment=tiny_categories 'data.sources.math.alpha=0.05,1.0' seed=0,1,2 \
  logger=csv trainer.enable_progress_bar=false "$@"
