#!/usr/bin/env bash
# IXC2-4KHD's resolution ablation at toy scale (also `make demo`, at seeds 0,1,2): at most 1, 4
# or 9 crops (HD-1/4/9) of the dynamic image partition, on the pattern task on a 96-px canvas
# that only HD-9 sees natively; 5 seeds (SEEDS=5,6,7 re-runs with others), then the report's
# verdicts and the headline table.
# Extra arguments are more overrides.
source "$(dirname "$0")/../study.sh"
run_study ixc_hd_resolution synthetic_magnifier -- \
  experiment=study_ixc_hd_detail resolution.max_crops=1,4,9 \
  trainer.enable_progress_bar=false "$@"
.venv/bin/python experiments/summary.py "$REPORT" synthetic_magnifier/accuracy \
  --expect resolution.max_crops=9=higher
