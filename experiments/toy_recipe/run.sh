#!/usr/bin/env bash
# The toy research recipe's measurement (docs/toy_recipe.md): the pattern task and the position
# task at HD-4 (2x2 crops of a 64-px image, 300 steps), each with the tiny ViT from scratch or
# pretrained on scenes (encoder=tiny_vit_scenes), with and without centred image tokens; and the
# full recipe at HD-1 on the pattern task (one downsampled view: should stay near chance).
# 3 seeds each (SEEDS=... for others); both sweeps go into one report.
STUDY_SEEDS=0,1,2
source "$(dirname "$0")/../study.sh"
ROOT="${MMFW_RUNS:-runs}/studies/toy_recipe_$(date +%Y-%m-%d_%H-%M-%S)"
SWEEP_DIR=$ROOT/hd4 study_sweep toy_recipe -- experiment=study_ixc_hd resolution.max_crops=4 \
  synthetic.attribute=pattern,position encoder=tiny_vit,tiny_vit_scenes \
  model.center_image_tokens=false,true logger=csv trainer.enable_progress_bar=false "$@"
SWEEP_DIR=$ROOT/hd1 study_sweep toy_recipe -- experiment=study_ixc_hd resolution.max_crops=1 \
  logger=csv trainer.enable_progress_bar=false "$@"
SWEEP=$ROOT
study_report toy_recipe synthetic_magnifier
.venv/bin/python experiments/summary.py "$REPORT" synthetic_magnifier/accuracy
