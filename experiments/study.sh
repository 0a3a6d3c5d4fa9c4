# Shared by experiments/*/run.sh (sourced): one study = a Hydra multirun + its report.
#   STUDY_SEEDS=0,1,2,3,4            the study's own seeds (set by run.sh before run_study;
#                                    none: no seed override, e.g. for an Optuna sweep)
#   REPORT_ARGS=(--baseline k=v)     extra mmfw-report arguments (optional)
#   run_study NAME [METRIC ...] -- OVERRIDES ...
# runs `mmfw-train -m OVERRIDES seed=$SEEDS` into runs/studies/NAME_<time>/ (MMFW_RUNS moves
# runs/) and writes the config-diff report with its verdicts there. With the study's own seeds
# (SEEDS unset, or equal to STUDY_SEEDS) the committed report experiments/NAME/report/ is
# rewritten too; other seeds (SEEDS=5,6,7 bash experiments/NAME/run.sh) leave it untouched.
# study_sweep and study_report are its two halves, for studies that evaluate more in between
# (the sweep's directory is then in $SWEEP; SWEEP_DIR=... chooses it, e.g. for two sweeps that
# share one report).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

study_seeds() {
  echo "${SEEDS:-${STUDY_SEEDS:-0,1,2,3,4}}"
}

study_sweep() {
  local name=$1
  shift
  [[ ${1:-} == -- ]] && shift
  SWEEP="${SWEEP_DIR:-${MMFW_RUNS:-runs}/studies/${name}_$(date +%Y-%m-%d_%H-%M-%S)}"
  local seeds=("seed=$(study_seeds)")
  [[ $(study_seeds) == none ]] && seeds=()  # e.g. an Optuna sweep, whose trials set no seed
  .venv/bin/mmfw-train -m "$@" ${seeds[@]+"${seeds[@]}"} "hydra.sweep.dir=$SWEEP"
}

study_report() {
  local name=$1 metrics=()
  shift
  [[ $# -gt 0 ]] && metrics=(--metrics "$@")
  .venv/bin/mmfw-report "$SWEEP" --out "$SWEEP/report" ${metrics[@]+"${metrics[@]}"} \
    ${REPORT_ARGS[@]+"${REPORT_ARGS[@]}"} > /dev/null
  if [[ $(study_seeds) == "${STUDY_SEEDS:-0,1,2,3,4}" ]]; then
    rm -rf "experiments/$name/report"
    .venv/bin/mmfw-report "$SWEEP" --out "experiments/$name/report" \
      ${metrics[@]+"${metrics[@]}"} ${REPORT_ARGS[@]+"${REPORT_ARGS[@]}"} > /dev/null
    REPORT="experiments/$name/report"
  else
    echo "SEEDS=$(study_seeds) are not the study's own (${STUDY_SEEDS:-0,1,2,3,4}):" \
      "experiments/$name/report is left as committed"
    REPORT="$SWEEP/report"
  fi
  echo "report: $REPORT/report.md (runs: $SWEEP)"
}

run_study() {
  local name=$1 metrics=()
  shift
  while [[ $# -gt 0 && $1 != -- ]]; do
    metrics+=("$1")
    shift
  done
  study_sweep "$name" "$@"
  study_report "$name" ${metrics[@]+"${metrics[@]}"}
}
