#!/usr/bin/env bash
# The main job: bootstrap, then measure the whole matrix and print the summary table.
#   ./scripts/bench.sh                      every registered variant plus kernel baselines
#   ./scripts/bench.sh "sync-gso --thread 2" "./my-forwarder"   only these specs
# Extra options go after "--", e.g. ./scripts/bench.sh -- --duration 5
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
specs=()
while (($#)) && [[ $1 != -- ]]; do specs+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
exec "$ROOT/.venv/bin/tunbench" matrix "${specs[@]}" --results-dir "$ROOT/results" "$@"
