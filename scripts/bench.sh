#!/usr/bin/env bash
# The main job: bootstrap, then measure the whole matrix and print the summary table.
#   ./scripts/bench.sh                      every registered variant plus kernel baselines
#   ./scripts/bench.sh "sync-gso --thread 2" "./my-forwarder"   only these specs
# Extra options go after "--" and override the defaults below, e.g. -- --duration 10
# Defaults (README, "How long bench.sh takes and why"): every row's capacity (2 unpaced
# runs), then the forwarders' cost at an offered load that the rows of a group carry
# (--offered auto: half the capacity of the slowest row in each group of rows within 3x
# of each other), at least 3 runs, more while a row's 95 % CI is wider than +-3 % of its
# mean, at most 5; each forwarder on a CPU of its own (the default
# --placement split); a busy machine is waited for 1 s at most (the run is marked noisy).
# tunbench prints how long it expects to take before it starts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
specs=()
while (($#)) && [[ $1 != -- ]]; do specs+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
defaults=(--offered auto --capacity-repeat 2 --duration 3 --omit 1 --repeat 3 --until-ci 3
    --max-repeat 5 --background-wait 1)
exec "$ROOT/.venv/bin/tunbench" matrix "${specs[@]}" --results-dir "$ROOT/results" \
    "${defaults[@]}" "$@"
