#!/usr/bin/env bash
# The main job: bootstrap, then measure the whole matrix and print the summary table.
#   ./scripts/bench.sh                      every registered variant plus kernel baselines
#   ./scripts/bench.sh "sync-gso --thread 2" "./my-forwarder"   only these specs
# Extra options go after "--" and override the defaults below, e.g. -- --duration 10
# Defaults (README, "How long bench.sh takes and why"): every row unpaced, at least 3 runs,
# more while a row's 95 % CI is wider than +-3 % of its mean, at most 6; rows that move
# MTU-sized packets with TCP's window capped below their TUN queue (--window auto), so no
# run is a loss-recovery race; a row the load generator runs out of first is judged on its
# cost (Gbit/s per core); each forwarder on a CPU of its own (the default --placement
# split); a busy machine is waited for 1 s at most (the run is marked noisy).
# tunbench prints how long it expects to take before it starts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
specs=()
while (($#)) && [[ $1 != -- ]]; do specs+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
defaults=(--window auto --duration 3 --omit 1 --repeat 3 --until-ci 3 --max-repeat 6
    --background-wait 1)
exec "$ROOT/.venv/bin/tunbench" matrix "${specs[@]}" --results-dir "$ROOT/results" \
    "${defaults[@]}" "$@"
