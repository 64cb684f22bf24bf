#!/usr/bin/env bash
# Bootstrap, then lint, type-check and run the test suite. Arguments go to pytest.
# As root the netns tests use real TUN devices, namespaces and iperf3; with CI=true a
# missing prerequisite fails them instead of skipping them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB_WITH_BROWSER=1 "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
"$ROOT/.venv/bin/ruff" check tunbench tunio forwarders tests
"$ROOT/.venv/bin/ruff" format --check tunbench tunio forwarders tests
"$ROOT/.venv/bin/mypy"
exec "$ROOT/.venv/bin/pytest" "$@"
