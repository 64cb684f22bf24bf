#!/usr/bin/env bash
# The main job: bootstrap, then measure the whole matrix and print the summary table.
#   ./scripts/bench.sh                      every registered variant plus kernel baselines
#   ./scripts/bench.sh "sync-gso --thread 2" "./my-forwarder"   only these specs
# Extra options go after "--" and override the defaults below, e.g. -- --duration 10
# Defaults (README, "How long bench.sh takes and why"): many short runs rather than a few
# long ones, at least 3 per cell, more while a cell's 95 % CI is wider than +-3 % of its
# mean, at most 8; a busy machine is waited for 1 s at most (the run is marked noisy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
specs=()
while (($#)) && [[ $1 != -- ]]; do specs+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
defaults=(--duration 3 --omit 1 --repeat 3 --until-ci 3 --max-repeat 8 --background-wait 1)
exec "$ROOT/.venv/bin/tunbench" matrix "${specs[@]}" --results-dir "$ROOT/results" \
    "${defaults[@]}" "$@"
