#!/usr/bin/env bash
# Optuna (TPE, seeded) tunes the tiny LLaVA twin's peak lr (log scale) and warmup share for
# synthetic-magnifier accuracy: 8 trials of a 300-step schedule (at 150 steps every trial is
# still near chance), the first 4 random. The report's "Optuna" section names the best trial
# and ranks the trials. Extra arguments are more overrides.
STUDY_SEEDS=none
source "$(dirname "$0")/../study.sh"
run_study optuna_lr_warmup synthetic_magnifier -- \
  experiment=tiny_llava trainer.max_steps=300 \
  hydra/sweeper=optuna_maximize objective=synthetic_magnifier/accuracy \
  'stage.lr=tag(log, interval(1e-4, 1e-2))' 'optim.warmup_ratio=interval(0.0, 0.3)' \
  hydra.sweeper.n_trials=8 hydra.sweeper.sampler.seed=0 hydra.sweeper.sampler.n_startup_trials=4 \
  logger=csv trainer.enable_progress_bar=false "$@"
echo "wall time: ${SECONDS} s"
