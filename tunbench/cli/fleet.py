"""``tunbench fleet INVENTORY [SPEC ...] [-- matrix options]``: the matrix on every host of
an Ansible inventory (:mod:`tunbench.plan.fleet`), then the hosts' outcomes and the table
by host."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tunbench.cli import common
from tunbench.cli import matrix as matrix_cli
from tunbench.cli.common import Parser, phase_printer
from tunbench.errors import UsageError
from tunio.argtypes import positive_int

# matrix options the fleet sets itself on every host
OWN = ("--results-dir", "--flamegraph-dir")


def split_argv(args: list[str]) -> tuple[list[str], list[str]]:
    """``fleet ... -- matrix options``: the arguments before ``--`` and those after (what
    argparse would otherwise mix with the specs)."""
    if args[:1] == ["fleet"] and "--" in args:
        i = args.index("--")
        return args[:i], args[i + 1 :]
    return args, []


def add_parser(sub: Any) -> None:
    f = sub.add_parser(
        "fleet",
        help="run the matrix on every host of an Ansible inventory, compare the hosts",
        description="Run `tunbench matrix` on every host of INVENTORY through Ansible "
        "(deploy/fleet.yml), one run per host at a time; options after -- go to the matrix.",
    )
    f.add_argument("inventory", type=Path, help="an Ansible inventory (INI or YAML)")
    f.add_argument("specs", nargs="*", help="specs to run (default: the default matrix)")
    f.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="results/fleet-<id>/<inventory name>/ go here (results)",
    )
    f.add_argument(
        "--deadline",
        type=positive_int,
        default=3600,
        metavar="S",
        help="seconds each host's matrix may take before it is stopped (3600)",
    )
    f.add_argument("--wait", action="store_true", help="wait for a busy host (up to the deadline)")
    f.add_argument(
        "--redact", action="store_true", help="result files without hostnames (to publish them)"
    )
    f.add_argument(
        "--no-install",
        action="store_true",
        help="hosts already have tunbench in tunbench_dir (only check its venv)",
    )
    f.add_argument("--limit", default=None, metavar="PATTERN", help="Ansible host pattern")
    f.add_argument(
        "--poll", type=positive_int, default=5, metavar="S", help="seconds between checks (5)"
    )
    f.add_argument(
        "-e",
        "--extra-var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an Ansible extra variable (tunbench_dir=..., tunbench_become=true)",
    )
    f.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    f.set_defaults(matrix_args=[])


def _check_matrix_args(specs: list[str], options: list[str]) -> None:
    """The matrix options parse as `tunbench matrix` would parse them (one line if not)."""
    for opt in options:
        if opt.split("=", 1)[0] in OWN:
            raise UsageError(f"fleet sets {opt.split('=', 1)[0]} itself on every host")
    p = Parser(prog="tunbench fleet --")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    matrix_cli.add_parser(sub)
    a = p.parse_args(["matrix", *specs, *options])
    from tunbench.cell.variants import parse_spec

    for spec in a.specs:
        parse_spec(spec)


def _extra_vars(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--extra-var wants KEY=VALUE, got {pair!r}")
        out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def handle(a: argparse.Namespace) -> int:
    from tunbench.analysis import results
    from tunbench.plan.fleet import OK, FleetOptions, run_fleet
    from tunbench.report import tables

    _check_matrix_args(a.specs, a.matrix_args)
    if not a.inventory.is_file():
        raise UsageError(f"inventory {a.inventory} is not a file")
    opts = FleetOptions(
        inventory=a.inventory,
        matrix_args=[*a.specs, *a.matrix_args],
        out=a.out,
        deadline_s=a.deadline,
        wait=a.wait,
        redact=a.redact,
        install=not a.no_install,
        poll_s=a.poll,
        limit=a.limit,
        extra_vars=_extra_vars(a.extra_var),
    )
    fleet_dir, doc = run_fleet(opts, phase_printer(a.quiet))
    hosts = doc["hosts"]
    rows = [
        f"| {h} | {o['outcome']} | {o['wall_s'] if o['wall_s'] is not None else '-'} | "
        f"{o['result_files']} | {o['error'] or ''} |"
        for h, o in hosts.items()
    ]
    print("| Host | Outcome | Wall s | Result files | Error |\n|---|---|---|---|---|")
    print("\n".join(rows) or "(no host answered)")
    recs = [results.flat(d) for d in results.load_dir(fleet_dir, on_skip=common.warn_skipped)]
    if recs:
        table = tables.markdown(recs, by_host=True)
        print()
        print(table)
        (fleet_dir / "report.md").write_text(table + "\n")
        from tunbench.report.reportpage import write_html

        write_html(recs, fleet_dir / "report.html", by_host=True)
    print(
        f"tunbench: fleet {doc['fleet_id']}: {fleet_dir}/{results.FLEET_FILE}; "
        f"`tunbench report --by host --results-dir {fleet_dir}` remakes the table",
        file=sys.stderr,
    )
    ok = sum(o["outcome"] == OK for o in hosts.values())
    return 0 if hosts and ok == len(hosts) else 1
