# Shared by experiments/*/run.sh (sourced): one study = a Hydra multirun + its report.
#   run_study NAME [METRIC ...] -- OVERRIDES ...
# runs `mmfw-train -m OVERRIDES` into runs/studies/NAME_<time>/ (MMFW_RUNS moves runs/), writes
# the config-diff report there and copies it to experiments/NAME/report/ (the committed one).
# study_sweep and study_report are its two halves, for studies that evaluate more in between
# (the sweep's directory is then in $SWEEP).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

study_sweep() {
  local name=$1
  shift
  [[ ${1:-} == -- ]] && shift
  SWEEP="${MMFW_RUNS:-runs}/studies/${name}_$(date +%Y-%m-%d_%H-%M-%S)"
  .venv/bin/mmfw-train -m "$@" "hydra.sweep.dir=$SWEEP"
}

study_report() {
  local name=$1
  shift
  .venv/bin/mmfw-report "$SWEEP" --out "$SWEEP/report" ${1+--metrics "$@"}
  rm -rf "experiments/$name/report"
  cp -r "$SWEEP/report" "experiments/$name/report"
  echo "report: experiments/$name/report/report.md (runs: $SWEEP)"
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
