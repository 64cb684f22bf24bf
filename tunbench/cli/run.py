"""``tunbench run SPEC``: one cell, one table row and its result file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tunbench.analysis import results
from tunbench.cli import common
from tunbench.cli.cellargs import add_workload, cell_options
from tunbench.cli.common import phase_printer
from tunbench.load.workloads import check_tool
from tunbench.report import tables
from tunbench.system.procs import adopt_orphans


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="measure one variant (one table row)")
    r.add_argument("spec", help='variant and its arguments, e.g. "sync-gso --thread 2"')
    add_workload(r)
    r.add_argument("--json", action="store_true", help="print the result record as JSON")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def handle(a: argparse.Namespace) -> int:
    from tunbench.cell.runs import run_cell
    from tunbench.cell.variants import parse_spec
    from tunbench.system.runstate import locked_run

    cell = parse_spec(a.spec)
    opts = cell_options(a)
    common.check_prerequisites()
    check_tool(opts.workload.kind)
    results.check_writable(a.results_dir)
    adopt_orphans()
    with locked_run():
        doc = run_cell(cell, opts, phase_printer(a.quiet))
    rec = results.flat(doc)
    table = tables.markdown([rec])
    print(table, file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(rec))
    if doc["status"] != "ok":
        print(f"tunbench: error: {a.spec}: {doc['error']}", file=sys.stderr)
        return 1
    return 0
