#!/usr/bin/env bash
# Optuna (TPE) tunes the peak lr (log scale) and the warmup share of the tiny LLaVA twin's short
# schedule for synthetic-magnifier accuracy: 8 trials of 300 steps (at 150 every trial is still at chance), the first 4 random, seeded;
# the report ranks the trials and names the best (its "Optuna" section).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
SWEEP="${MMFW_RUNS:-runs}/studies/optuna_lr_warmup_$(date +%Y-%m-%d_%H-%M-%S)"

start=$(date +%s)
"$BIN/mmfw-train" -m experiment=tiny_llava trainer.max_steps=300 \
  hydra/sweeper=optuna_maximize objective=synthetic_magnifier/accuracy \
  'stage.lr=tag(log, interval(1e-4, 1e-2))' 'optim.warmup_ratio=interval(0.0, 0.3)' \
  hydra.sweeper.n_trials=8 hydra.sweeper.sampler.seed=0 hydra.sweeper.sampler.n_startup_trials=4 \
  logger=csv trainer.enable_progress_bar=false "hydra.sweep.dir=$SWEEP" "$@"
echo "sweep: $(($(date +%s) - start)) s"
"$BIN/mmfw-report" "$SWEEP" --out "$SWEEP/report"
rm -rf experiments/optuna_lr_warmup/report
cp -r "$SWEEP/report" experiments/optuna_lr_warmup/report
echo "report: experiments/optuna_lr_warmup/report/report.md"
