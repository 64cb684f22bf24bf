"""``tunbench sweep SPEC ... --over NAME=V1,V2``: one option over values: table, CSV, chart."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tunbench.analysis import results
from tunbench.cli import common
from tunbench.cli.cellargs import (
    add_workload,
    cell_options,
    placed_options,
    workload_flags,
    workload_parser,
)
from tunbench.cli.common import add_repeats, matrix_options
from tunbench.errors import UsageError
from tunbench.system.procs import adopt_orphans


def add_parser(sub: Any) -> None:
    sw = sub.add_parser("sweep", help="one parameter over values: a table, a chart, a CSV")
    sw.add_argument("specs", nargs="+", help="specs to run, e.g. sync-gso async-gso")
    sw.add_argument(
        "--over",
        required=True,
        metavar="NAME=V1,V2,...",
        help="a forwarder option (thread=1,2,4) or a run option (parallel=1,2,4, mtu=1500,9000)",
    )
    add_workload(sw)
    sw.set_defaults(results_dir=None)  # the result files go with the sweep, into --out
    sw.add_argument(
        "--out", type=Path, default=None, help="directory for everything (results/sweep-NAME)"
    )
    add_repeats(sw)
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def handle(a: argparse.Namespace) -> int:
    from tunbench.plan import sweep
    from tunbench.plan.matrix import run_matrix
    from tunbench.report import sweeptable
    from tunbench.system.runstate import locked_run

    over = sweep.parse_over(a.over)
    wparser = workload_parser()
    flags = workload_flags(wparser)
    kind, points = sweep.plan_cells(a.specs, over, flags)
    out: Path = a.out or Path("results") / f"sweep-{over.name}"
    if a.results_dir is None:
        a.results_dir = out
    mopts = matrix_options(a, out / "flamegraph", native=False)
    if kind == "workload":
        action = flags[over.flag]
        opts = []
        for v in over.values:
            try:  # the option's own type and checks
                parsed = wparser.parse_args([over.flag, v])
            except UsageError as exc:
                msg = str(exc).split(": ", 1)[-1]
                raise UsageError(f"--over {over.name}={v}: {msg}") from None
            opts.append(
                cell_options(
                    argparse.Namespace(**{**vars(a), action.dest: getattr(parsed, action.dest)})
                )
            )
        label = sweep.axis_label(over, action.help)
    else:
        opts = [cell_options(a)] * len(over.values)
        info = points[0].cell.info
        helps = {o.flag: o.help for o in info.options()} if info else {}
        label = sweep.axis_label(over, helps.get(over.flag))
    per_cell = placed_options(
        a, [p.cell for p in points], [opts[over.values.index(p.value)] for p in points]
    )
    extra = [{"sweep": {"param": over.name, "value": p.value, "spec": p.spec}} for p in points]
    common.check_prerequisites()
    results.check_writable(a.results_dir)
    results.check_writable(out)
    adopt_orphans()
    with locked_run():
        recs = run_matrix(
            [p.cell for p in points],
            per_cell[0],
            mopts,
            progress=not a.quiet,
            cell_opts=per_cell,
            cell_extra=extra,
            on_plan=common.print_plan,
        )
    failed = [r for r in recs if r["status"] != "ok"]
    for r in failed:
        print(f"tunbench: cell {r['spec']!r} failed: {r['error']}", file=sys.stderr)
    common.print_offered(recs, mopts.offered_auto)
    if mopts.offered_auto or a.offered is not None:  # the sweep charts the paced rows
        recs = [r for r in recs if r.get("offered_bps") is not None]
    df = sweeptable.rows(recs, over, points)
    table = sweeptable.markdown(df, over)
    print(table)
    _write_sweep(df, over, label, table, recs, out)
    return 1 if failed else 0


def _write_sweep(
    df: Any, over: Any, label: str, table: str, recs: list[dict[str, Any]], out: Path
) -> None:
    """sweep.md, sweep.csv and sweep.html (plotly.min.js beside it) into ``out``."""
    from tunbench.report import sweeppage, sweeptable
    from tunbench.report.htmlpage import write_plotly_js

    first = recs[0] if recs else {}
    machine = f"kernel {first.get('kernel')}, {first.get('cpu_model')}"
    try:
        (out / "sweep.md").write_text(table + "\n")
        (out / "sweep.csv").write_text(sweeptable.csv(df))
        write_plotly_js(out)
        (out / "sweep.html").write_text(sweeppage.html(df, over, label, machine))
    except OSError as exc:
        raise UsageError(f"cannot write the sweep: {exc.strerror}: {exc.filename}") from exc
    print(
        f"tunbench: wrote {out / 'sweep.md'}, {out / 'sweep.csv'} and {out / 'sweep.html'}",
        file=sys.stderr,
    )
