"""``--topology two-host`` and its options for ``tunbench run``: which hosts, how to reach
them, how the underlay between them is shaped; and the handler that runs such a row
(:mod:`tunbench.plan.twohost`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tunbench.cli.common import nonneg_float, offered_rate, phase_printer
from tunbench.errors import UsageError


def rate(text: str) -> float:
    value = offered_rate(text)
    if not isinstance(value, float):
        raise argparse.ArgumentTypeError("a rate like 200M, not auto")
    return value


def add_topology(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("two hosts")
    g.add_argument(
        "--topology",
        choices=("one-host", "two-host"),
        default="one-host",
        help="two-host: a peer row's halves (or the link row) on --host-a and --host-b",
    )
    g.add_argument("--host-a", default=None, help="inventory name or SSH target of half a")
    g.add_argument("--host-b", default=None, help="inventory name or SSH target of half b")
    g.add_argument("--inventory", type=Path, default=None, help="a YAML/JSON Ansible inventory")
    g.add_argument(
        "--shape-rate",
        type=rate,
        default=None,
        metavar="RATE",
        help="shape the underlay to RATE bits/s (tbf on each host's interface towards the other)",
    )
    g.add_argument(
        "--shape-delay",
        type=nonneg_float,
        default=None,
        metavar="MS",
        help="added delay; needs the kernel's netem qdisc (refused where there is none)",
    )


def two_host(a: argparse.Namespace) -> bool:
    """Whether the command runs across two hosts (and its options make sense)."""
    if a.topology != "two-host":
        if a.host_a or a.host_b or a.shape_rate or a.shape_delay is not None:
            raise UsageError("--host-a/--host-b/--shape-* need --topology two-host")
        return False
    if not a.host_a or not a.host_b:
        raise UsageError("--topology two-host needs --host-a and --host-b")
    if getattr(a, "verify", False):
        raise UsageError("--verify is not available with --topology two-host yet")
    if getattr(a, "offered", None) == "auto":
        raise UsageError("--offered auto is not available with --topology two-host yet")
    return True


def run_two_host(a: argparse.Namespace) -> int:
    """``run SPEC --topology two-host``: one row, its table, its result file."""
    from tunbench.analysis import results
    from tunbench.cli.cellargs import cell_options
    from tunbench.plan import sshhosts
    from tunbench.plan.twohost import Shape, TwoHost, parse_row
    from tunbench.report import tables

    cell = parse_row(a.spec)
    inventory = sshhosts.load_inventory(a.inventory) if a.inventory else None
    host_a = sshhosts.resolve(a.host_a, inventory)
    host_b = sshhosts.resolve(a.host_b, inventory)
    sshhosts.check_pair(host_a, host_b)
    results.check_writable(a.results_dir)
    row = TwoHost(cell, cell_options(a), host_a, host_b, Shape(a.shape_rate, a.shape_delay))
    row.progress = phase_printer(a.quiet)
    doc = row.run()
    print(tables.markdown([results.flat(doc)]))
    if doc["status"] != "ok":
        print(f"tunbench: error: {a.spec}: {doc['error']}", file=sys.stderr)
        return 1
    return 0
