"""``tunbench matrix [SPEC ...]``: many cells in interleaved rounds, one table, the report page."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from tunbench.analysis import results
from tunbench.analysis.stats import MIN_EFFECT
from tunbench.cli import common
from tunbench.cli.cellargs import add_workload, cell_options, placed_options
from tunbench.cli.common import add_repeats, matrix_options
from tunbench.cli.topoargs import add_topology, run_two_host_matrix, two_host
from tunbench.errors import Interrupted
from tunbench.load.workloads import check_tool
from tunbench.system import steadiness
from tunbench.system.procs import adopt_orphans


def add_parser(sub: Any) -> None:
    m = sub.add_parser("matrix", help="measure many specs (default: every variant + baselines)")
    m.add_argument("specs", nargs="*", help="specs to run (default: all registered)")
    add_workload(m)
    add_repeats(m)
    m.add_argument(
        "--paired",
        action="store_true",
        help="pair every later spec with the first, round by round: their paired verdicts "
        "after the table, and --resolve's spread (the default for a matrix of two specs)",
    )
    m.add_argument("--native", action="store_true", help="Python variants: py-spy --native stacks")
    m.add_argument("--flamegraph-dir", type=Path, default=Path("flamegraph"))
    m.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_topology(m)


def handle(a: argparse.Namespace) -> int:
    from tunbench.cell.variants import default_matrix, parse_spec
    from tunbench.plan.budget import estimate
    from tunbench.plan.matrix import run_matrix
    from tunbench.system.runstate import locked_run

    if two_host(a):
        return run_two_host_matrix(a)
    cells = [parse_spec(s) for s in (a.specs or default_matrix())]
    opts = placed_options(a, cells, cell_options(a))
    mopts = matrix_options(a, a.flamegraph_dir, a.native)
    if len({c.spec for c in cells}) == 2:  # an A/B: B's verdict is paired with A's rounds
        mopts = dataclasses.replace(mopts, paired=True)
    common.check_prerequisites()
    check_tool(opts[0].workload.kind)
    results.check_writable(a.results_dir)
    written: list[dict[str, Any]] = []
    adopt_orphans()
    if not a.quiet:
        print(f"tunbench: {estimate(cells, opts, mopts)}", file=sys.stderr, flush=True)
    try:
        with locked_run():
            speeds = steadiness.measure(sorted(os.sched_getaffinity(0)))
            if not a.quiet:
                print(f"tunbench: {steadiness.line(speeds)}", file=sys.stderr, flush=True)
            recs = run_matrix(
                cells,
                opts[0],
                mopts,
                progress=not a.quiet,
                on_result=written.append,
                cell_opts=opts,
                cell_extra=[{"cpu_speed": [s.to_json() for s in speeds]}] * len(cells),
                on_plan=common.print_plan,
            )
    except Interrupted:
        n = len(written)
        print(
            f"tunbench: {n} result file{'' if n == 1 else 's'} written to {a.results_dir} "
            f"before the interruption; `tunbench report --results-dir {a.results_dir}` "
            "makes the table from them",
            file=sys.stderr,
        )
        raise
    failed = [r for r in recs if r["status"] != "ok"]
    for r in failed:
        print(f"tunbench: cell {r['spec']!r} failed: {r['error']}", file=sys.stderr)
    common.print_offered(recs, mopts.offered_auto)
    if a.until_ci is not None:
        _print_convergence(recs, a.until_ci, a.max_repeat)
    from tunbench.report import tables

    table = tables.markdown(recs)
    print(table)
    verdicts: list[Any] = []
    if mopts.paired:
        margin = a.resolve if a.resolve is not None else 100 * MIN_EFFECT
        verdicts = _print_paired(recs, [c.spec for c in cells], margin)
    _write_reports(recs, table, a.results_dir, verdicts)
    return 1 if failed else 0


def _print_convergence(recs: list[dict[str, Any]], until_ci: float, max_repeat: int) -> None:
    from tunbench.plan.untilci import convergence

    met, missed = convergence(recs, until_ci)
    total = len(met) + len(missed)
    print(
        f"tunbench: {len(met)} of {total} rows converged to ±{until_ci:g}% (95% CI of the mean)"
        + (f"; not within {max_repeat} runs:" if missed else ""),
        file=sys.stderr,
    )
    for m in missed:
        width = f"±{m.half:.1f}%" if m.half is not None else "no interval"
        more = "" if m.needed is None else f"; at this spread ±{until_ci:g}% takes ~{m.needed} runs"
        print(
            f"tunbench:   {m.spec}: {width} after {m.runs} successful runs{more}", file=sys.stderr
        )


def _print_paired(recs: list[dict[str, Any]], specs: list[str], margin: float) -> list[Any]:
    """Every later spec against the first, their rounds paired (plan/paired.py); the
    verdict rows."""
    from tunbench.plan import paired

    order = list(dict.fromkeys(specs))
    rows = [row for spec in order[1:] for row in paired.pair(recs, order[0], spec, margin)]
    if rows:
        print()
        print(paired.markdown(rows))
    return rows


def _write_reports(
    recs: list[dict[str, Any]], table: str, results_dir: Path, verdicts: list[Any]
) -> None:
    """This matrix's markdown table (and paired verdicts) and HTML page next to its result
    files."""
    from tunbench.plan import paired
    from tunbench.report.reportpage import write_html

    text = table + ("\n\n" + paired.markdown(verdicts) if verdicts else "")
    (results_dir / "report.md").write_text(text + "\n")
    page = write_html(
        recs,
        results_dir / "report.html",
        verdicts=paired.frame(verdicts) if verdicts else None,
        verdicts_note=paired.legend(verdicts),
    )
    print(f"tunbench: wrote {results_dir / 'report.md'} and {page}", file=sys.stderr)
