"""``tunbench run SPEC``: one cell, one table row and its result file (with ``--offered
auto`` two: the capacity run, then the run paced at half of it); with ``--verify`` the
first run's cell then carries ``tunbench verify``'s checks."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tunbench.analysis import results
from tunbench.cli import common
from tunbench.cli.cellargs import add_workload, cell_options, placed_options
from tunbench.cli.common import phase_printer, print_offered
from tunbench.cli.topoargs import add_topology, run_two_host, two_host
from tunbench.errors import UsageError
from tunbench.load.workloads import check_tool
from tunbench.system.procs import adopt_orphans


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="measure one variant (one table row)")
    r.add_argument("spec", help='variant and its arguments, e.g. "sync-gso --thread 2"')
    add_workload(r)
    r.add_argument(
        "--verify",
        action="store_true",
        help="after the measured run, the checks of `tunbench verify` through the same "
        "forwarder (TCP, UDP, ICMP byte for byte); a failed check fails the command",
    )
    r.add_argument("--json", action="store_true", help="print the result record as JSON")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_topology(r)


def handle(a: argparse.Namespace) -> int:
    from tunbench.analysis.cost import choose_rate
    from tunbench.cell.options import with_offered
    from tunbench.cell.runs import run_cell
    from tunbench.cell.variants import parse_spec
    from tunbench.plan.verify import after_run
    from tunbench.system.runstate import locked_run

    if two_host(a):
        return run_two_host(a)
    cell = parse_spec(a.spec)
    if a.verify and cell.kind == "external" and cell.peer is None and "{stats}" in a.spec:
        raise UsageError(
            "--verify: an external forwarder's own counters ({stats}) would count the checks' "
            "traffic too; run `tunbench verify` separately"
        )
    [opts] = placed_options(a, [cell], cell_options(a))
    common.check_prerequisites()
    check_tool(opts.workload.kind)
    results.check_writable(a.results_dir)
    adopt_orphans()
    docs = []
    with locked_run():
        checks = after_run if a.verify else None
        docs.append(run_cell(cell, opts, phase_printer(a.quiet), after=checks))
        capacity = docs[0]["results"].get("bps")
        if a.offered == "auto" and docs[0]["status"] == "ok" and capacity:
            offered = choose_rate({cell.spec: [capacity]})
            docs.append(run_cell(cell, with_offered(opts, offered), phase_printer(a.quiet)))
    recs = [results.flat(doc) for doc in docs]
    from tunbench.report import tables  # pandas: ~0.4 s, only once there is a table

    # also with -q --json: the table's notes carry the warnings (a busy machine, ...)
    print(tables.markdown(recs), file=sys.stderr if a.json else sys.stdout)
    print_offered(recs, a.offered == "auto")
    if a.json:
        print(json.dumps(recs[-1]))
    failed = [doc for doc in docs if doc["status"] != "ok"]
    for doc in failed:
        print(f"tunbench: error: {a.spec}: {doc['error']}", file=sys.stderr)
    verified = docs[0].get("verify") or {"ok": True, "checks": {}}
    if not verified["ok"]:
        problems = "; ".join(f"{k}: {v}" for k, v in verified["checks"].items() if v != "ok")
        print(f"tunbench: error: {a.spec}: verification failed: {problems}", file=sys.stderr)
    return 1 if failed or not verified["ok"] else 0
