#!/usr/bin/env bash
# Bootstrap, then lint, type-check and run the test suite. Arguments go to pytest (one
# run, as given). Without arguments the suite runs in two steps: the tests that measure
# nothing (unit and browser tests) on every CPU at once (pytest-xdist), then the root
# tests and the hot-path benchmarks one at a time, alone on the machine, because they
# measure it. Both steps always run; the exit status is non-zero if either failed.
# As root the netns tests use real TUN devices, namespaces and iperf3; with CI=true a
# missing prerequisite fails them instead of skipping them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB_WITH_BROWSER=1 "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
"$ROOT/.venv/bin/ruff" check tunbench tunio forwarders tests
"$ROOT/.venv/bin/ruff" format --check tunbench tunio forwarders tests
"$ROOT/.venv/bin/mypy"
if (($#)); then
    exec "$ROOT/.venv/bin/pytest" "$@"
fi
rc=0
"$ROOT/.venv/bin/pytest" -n "$(nproc)" tests --ignore=tests/netns --ignore=tests/bench || rc=$?
"$ROOT/.venv/bin/pytest" tests/netns tests/bench || rc=$?
exit "$rc"
