"""``tunbench verify SPEC``: TCP, UDP and ICMP through a forwarder, byte for byte."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tunbench.cell.options import CellOptions
from tunbench.cli import common
from tunbench.cli.common import phase_printer
from tunbench.system.procs import adopt_orphans
from tunio.argtypes import mtu


def add_parser(sub: Any) -> None:
    v = sub.add_parser("verify", help="check a forwarder delivers TCP/UDP/ICMP byte for byte")
    v.add_argument("spec")
    v.add_argument("--mtu", type=mtu, default=1500)
    v.add_argument("--json", action="store_true", help="print the checks as JSON")
    v.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def handle(a: argparse.Namespace) -> int:
    from tunbench.cell.variants import parse_spec
    from tunbench.plan.verify import verify_cell
    from tunbench.system.runstate import locked_run

    cell = parse_spec(a.spec)
    common.check_prerequisites()
    adopt_orphans()
    with locked_run():
        rep = verify_cell(cell, CellOptions(mtu=a.mtu), phase_printer(a.quiet))
    for name, outcome in rep.checks.items():
        print(f"{a.spec}: {name}: {outcome}")
    if a.json:
        print(
            json.dumps(
                {"spec": rep.spec, "ok": rep.ok, "checks": rep.checks, "forwarder": rep.forwarder}
            )
        )
    if not rep.ok:
        print(f"tunbench: error: {a.spec}: verification failed", file=sys.stderr)
        return 1
    return 0
