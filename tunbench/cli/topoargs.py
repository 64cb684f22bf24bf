"""``--topology two-host`` and its options for ``tunbench run`` and ``matrix``: which
hosts, how to reach them, how the underlay between them is shaped; and the handlers that
run such rows (:mod:`tunbench.plan.twohost`)."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunbench.cli.common import nonneg_float, offered_rate, phase_printer
from tunbench.errors import UsageError

if TYPE_CHECKING:
    from tunbench.cell.variants import CellSpec
    from tunbench.plan.sshhosts import Host


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
        specs = [a.spec] if getattr(a, "spec", None) else list(getattr(a, "specs", None) or [])
        if any(spec.split()[:1] == ["link"] for spec in specs):
            raise UsageError(
                "link is the underlay between two hosts: give --topology two-host "
                "--host-a A --host-b B"
            )
        return False
    if not a.host_a or not a.host_b:
        raise UsageError("--topology two-host needs --host-a and --host-b")
    if getattr(a, "offered", None) == "auto":
        raise UsageError("--offered auto is not available with --topology two-host yet")
    return True


def _hosts(a: argparse.Namespace) -> tuple[Host, Host]:
    from tunbench.plan import sshhosts

    inventory = sshhosts.load_inventory(a.inventory) if a.inventory else None
    host_a = sshhosts.resolve(a.host_a, inventory)
    host_b = sshhosts.resolve(a.host_b, inventory)
    sshhosts.check_pair(host_a, host_b)
    return host_a, host_b


def _row(
    a: argparse.Namespace,
    cell: CellSpec,
    hosts: tuple[Host, Host],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure one two-host row (its result file written); its document."""
    from tunbench.cli.cellargs import cell_options
    from tunbench.plan.twohost import Shape, TwoHost

    shape = Shape(a.shape_rate, a.shape_delay)
    row = TwoHost(cell, cell_options(a), *hosts, shape, verify=getattr(a, "verify", False))
    row.progress = phase_printer(a.quiet)
    return row.run(extra)


def run_two_host(a: argparse.Namespace) -> int:
    """``run SPEC --topology two-host``: one row, its table, its result file."""
    from tunbench.analysis import results
    from tunbench.plan.twohost import parse_row
    from tunbench.report import tables

    cell = parse_row(a.spec)
    hosts = _hosts(a)
    results.check_writable(a.results_dir)
    doc = _row(a, cell, hosts)
    rec = results.flat(doc)
    print(tables.markdown([rec]), file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(rec))
    if doc["status"] != "ok":
        print(f"tunbench: error: {a.spec}: {doc['error']}", file=sys.stderr)
        return 1
    verified = doc.get("verify") or {"ok": True, "checks": {}}
    if not verified["ok"]:
        problems = "; ".join(f"{k}: {v}" for k, v in verified["checks"].items() if v != "ok")
        print(f"tunbench: error: {a.spec}: verification failed: {problems}", file=sys.stderr)
        return 1
    return 0


def run_two_host_matrix(a: argparse.Namespace) -> int:
    """``matrix SPEC... --topology two-host``: ``--repeat`` rounds of the rows (``link``
    and every peer with a half mode by default), each round's order rotated (A B C, C A
    B, ...) so drift hits every row alike; one table. No profiling or diagnostic pass."""
    from tunbench.analysis import results
    from tunbench.peers.registry import LAUNCHERS
    from tunbench.plan.twohost import LINK, parse_row
    from tunbench.report import tables

    if a.until_ci is not None or a.paired:
        raise UsageError("--until-ci and --paired are not available with --topology two-host yet")
    specs = a.specs or [LINK, *sorted(n for n, p in LAUNCHERS.items() if p.halves)]
    cells = [parse_row(spec) for spec in specs]
    hosts = _hosts(a)
    results.check_writable(a.results_dir)
    recs = []
    matrix_id = secrets.token_hex(4)
    for r in range(a.repeat):
        shift = r % len(cells)
        order = cells[len(cells) - shift :] + cells[: len(cells) - shift]
        for pos, cell in enumerate(order):
            # the matrix block one-host rounds write: `% of kernel` pairs a round's runs
            # with that round's link run
            where = {"id": matrix_id, "repeat": r, "repeats": a.repeat, "order": pos}
            where |= {"cell": cells.index(cell), "seed": None, "until_ci": None}
            where |= {"max_repeat": None, "phase": None, "resolve": None, "plan": None}
            recs.append(results.flat(_row(a, cell, hosts, {"matrix": where})))
    failed = [rec for rec in recs if rec["status"] != "ok"]
    for rec in failed:
        print(f"tunbench: cell {rec['spec']!r} failed: {rec['error']}", file=sys.stderr)
    print(tables.markdown(recs))
    return 1 if failed else 0
