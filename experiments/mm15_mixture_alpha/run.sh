#!/usr/bin/env bash
# MM1.5's mixture-ratio ablation at toy scale: the alpha of the "math" category (relative to
# "general") on the tiny LLaVA twin trained on the synthetic categories, 3 seeds each; the
# report compares per-category accuracy as mean ± spread.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
SWEEP="${MMFW_RUNS:-runs}/studies/mm15_mixture_alpha_$(date +%Y-%m-%d_%H-%M-%S)"

"$BIN/mmfw-train" -m experiment=tiny_categories 'data.sources.math.alpha=0.05,1.0' seed=0,1,2 \
  logger=csv trainer.enable_progress_bar=false "hydra.sweep.dir=$SWEEP" "$@"
"$BIN/mmfw-report" "$SWEEP" --out "$SWEEP/report" \
  --metrics math text_rich counting spatial multi_image synthetic_magnifier
rm -rf experiments/mm15_mixture_alpha/report
cp -r "$SWEEP/report" experiments/mm15_mixture_alpha/report
echo "report: experiments/mm15_mixture_alpha/report/report.md"
