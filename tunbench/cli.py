"""Command line: one ``cmd_<name>`` per subcommand and a dispatch dict.

Library code raises typed errors; only this module prints them (one line) and turns them
into exit codes: 2 bad input or missing prerequisite, 1 a failed measurement, 130/143
interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from tunbench import report, results, signals
from tunbench.errors import Interrupted, PrerequisiteError, TunbenchError, UsageError
from tunbench.procs import adopt_orphans
from tunbench.session import CellOptions
from tunbench.stats import MIN_EFFECT
from tunbench.workloads import WorkloadOptions, check_tool
from tunio.argtypes import mtu, nonneg_int, positive_int


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def check_prerequisites() -> str:
    """Root, /dev/net/tun and libiperf; returns the iperf3 version."""
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "tunbench needs root (CAP_NET_ADMIN) to create namespaces and TUN devices"
        )
    if not os.path.exists("/dev/net/tun"):
        raise PrerequisiteError("/dev/net/tun is missing: load the tun module (modprobe tun)")
    from tunbench.runners.iperf3 import check_available

    return check_available()


def _add_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=positive_int, default=10, help="seconds measured (10)")
    p.add_argument("--omit", type=nonneg_int, default=1, help="warm-up seconds not counted (1)")
    p.add_argument("--mtu", type=mtu, default=1500, help="MTU of both devices, bytes (1500)")
    p.add_argument("--parallel", type=positive_int, default=1, help="iperf3 streams (1)")
    p.add_argument("--reverse", action="store_true", help="server sends (b -> a)")
    p.add_argument("--udp", action="store_true", help="UDP instead of TCP")
    p.add_argument(
        "--bandwidth", type=nonneg_int, default=0, help="target bits/s (UDP: 0 = unlimited)"
    )
    _add_workload_kinds(p)
    p.add_argument(
        "--grace",
        type=positive_int,
        default=20,
        help="seconds past duration+omit before iperf3 counts as hung (20)",
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="ping through the forwarder during the run: RTT p50/p99",
    )
    p.add_argument(
        "--cpus",
        type=_cpus,
        default=None,
        metavar="FWD:LOAD",
        help="pin the forwarder and the iperf3/ping processes, e.g. 0:1",
    )
    p.add_argument(
        "--background-limit",
        type=_percent,
        default=15.0,
        metavar="PCT",
        help="whole-machine CPU before traffic (%% of one core) above which a run is noisy (15)",
    )
    p.add_argument(
        "--background-wait",
        type=_nonneg_float,
        default=3.0,
        metavar="S",
        help="seconds to wait for the machine to get quiet before running anyway (3)",
    )
    p.add_argument(
        "--background-seconds",
        type=_background_seconds,
        default=float(os.environ.get("TUNBENCH_BACKGROUND_SECONDS", "1")),
        metavar="S",
        help="how long one background check measures, >= 0.1 "
        "(1; default from $TUNBENCH_BACKGROUND_SECONDS)",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))


def _background_seconds(text: str) -> float:
    value = _nonneg_float(text)
    if value < 0.1:
        raise argparse.ArgumentTypeError(f"{text}: at least 0.1 s")
    return value


def _add_repeats(m: argparse.ArgumentParser) -> None:
    """matrix's and sweep's rounds: --repeat, --until-ci, --max-repeat, --seed, --no-profile."""
    m.add_argument("--repeat", type=positive_int, default=3, help="runs per cell (3)")
    m.add_argument(
        "--until-ci",
        type=_percent,
        default=None,
        metavar="PCT",
        help="after --repeat rounds, rerun cells until their 95%% CI is within ±PCT%% of the mean",
    )
    m.add_argument(
        "--max-repeat",
        type=positive_int,
        default=8,
        metavar="M",
        help="with --until-ci: at most M runs per cell (8)",
    )
    m.add_argument(
        "--seed",
        type=nonneg_int,
        default=None,
        help="seed of the shuffled order within each round (default: random, recorded)",
    )
    m.add_argument(
        "--no-profile", action="store_true", help="skip the profiling passes (py-spy, perf)"
    )


def _add_workload_kinds(p: argparse.ArgumentParser) -> None:
    """Workloads beyond one iperf3 stream (tunbench/workloads.py); each is its own row."""
    from tunbench.workloads import IPERF_PROCS, KINDS

    p.add_argument(
        "--workload",
        choices=KINDS,
        default="stream",
        help="stream: iperf3 (default); rr: sockperf request/response TPS and latency; "
        "crr: iperf 2 connections/s; zero-loss: highest UDP rate within --max-loss",
    )
    p.add_argument("--bidir", action="store_true", help="stream: both directions at once")
    p.add_argument(
        "--rr-size", type=positive_int, default=None, metavar="B", help="rr: message bytes (64)"
    )
    p.add_argument(
        "--pkt-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="zero-loss: IP packet bytes, 64..MTU (default: the MTU)",
    )
    p.add_argument(
        "--max-loss",
        type=_nonneg_float,
        default=None,
        metavar="PCT",
        help="zero-loss: highest loss counted as none, %% (0.1)",
    )
    p.add_argument(
        "--iperf-procs",
        choices=IPERF_PROCS,
        default="one",
        help="stream: per-stream = one iperf3 client/server pair per --parallel stream",
    )


def _workload_options(a: argparse.Namespace) -> WorkloadOptions:
    """The WorkloadOptions of the command line; UsageError for an option of another kind.

    Options a kind does not use stay None, so they never split rows."""
    from tunbench.runners.sockperf import MIN_SIZE
    from tunbench.workloads import MIN_PKT

    kind = a.workload
    wrong = [
        flag
        for flag, given, kinds in (
            ("--bidir", a.bidir, ("stream",)),
            ("--udp", a.udp, ("stream",)),
            ("--reverse", a.reverse, ("stream",)),
            ("--rr-size", a.rr_size is not None, ("rr",)),
            ("--pkt-size", a.pkt_size is not None, ("zero-loss",)),
            ("--max-loss", a.max_loss is not None, ("zero-loss",)),
            ("--iperf-procs", a.iperf_procs != "one", ("stream",)),
        )
        if given and kind not in kinds
    ]
    if wrong:
        raise UsageError(f"{' and '.join(wrong)}: not an option of --workload {kind}")
    if a.bidir and (a.udp or a.reverse):
        raise UsageError("--bidir runs both directions over TCP: no --udp or --reverse")
    if kind == "rr" and a.rr_size is not None and a.rr_size < MIN_SIZE:
        raise UsageError(f"--rr-size {a.rr_size}: sockperf's smallest message is {MIN_SIZE}")
    pkt = a.pkt_size if a.pkt_size is not None else a.mtu
    if kind == "zero-loss" and not MIN_PKT <= pkt <= a.mtu:
        raise UsageError(f"--pkt-size {pkt}: expected {MIN_PKT}..{a.mtu} (the MTU)")
    return WorkloadOptions(
        kind=kind,
        rr_size=(a.rr_size or 64) if kind == "rr" else None,
        pkt_size=pkt if kind == "zero-loss" else None,
        max_loss=(a.max_loss if a.max_loss is not None else 0.1) if kind == "zero-loss" else None,
        iperf_procs=a.iperf_procs,
    )


def _percent(text: str) -> float:
    value = _nonneg_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a percentage above 0, got {text!r}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _cell_options(a: argparse.Namespace) -> CellOptions:
    from tunbench.runners.iperf3 import ClientOptions

    fwd_cpus, load_cpus = a.cpus if a.cpus else ((), ())
    workload = _workload_options(a)
    return CellOptions(
        workload=workload,
        results_dir=a.results_dir,
        mtu=a.mtu,
        latency=a.latency,
        grace=float(a.grace),
        fwd_cpus=fwd_cpus,
        load_cpus=load_cpus,
        background_limit=a.background_limit,
        background_wait=a.background_wait,
        background_seconds=a.background_seconds,
        iperf=ClientOptions(
            duration=a.duration,
            omit=a.omit,
            udp=a.udp,
            bandwidth=a.bandwidth,
            parallel=a.parallel,
            reverse=a.reverse,
            bidir=a.bidir,
            # UDP: one datagram per packet (MTU - IPv4 - UDP headers), not libiperf's
            # default, which sends IP-fragmented 64 KB datagrams
            blksize=a.mtu - 28 if a.udp else 0,
        ),
    )


def _phase_printer(quiet: bool) -> Callable[[str], None]:
    def show(phase: str) -> None:
        if not quiet:
            print(f"tunbench: {phase}", file=sys.stderr, flush=True)

    return show


def cmd_run(a: argparse.Namespace) -> int:
    from tunbench.runstate import locked_run
    from tunbench.session import run_cell
    from tunbench.variants import parse_spec

    cell = parse_spec(a.spec)
    opts = _cell_options(a)
    check_prerequisites()
    check_tool(opts.workload.kind)
    results.check_writable(a.results_dir)
    adopt_orphans()
    with locked_run():
        doc = run_cell(cell, opts, _phase_printer(a.quiet))
    rec = results.flat(doc)
    table = report.markdown([rec])
    print(table, file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(rec))
    if doc["status"] != "ok":
        print(f"tunbench: error: {a.spec}: {doc['error']}", file=sys.stderr)
        return 1
    return 0


def _cpus(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"0:1"`` or ``"0,1:2,3"``: forwarder CPUs, then iperf3/ping CPUs."""
    try:
        fwd, load = text.split(":")
        pair = (
            tuple(int(c) for c in fwd.split(",") if c),
            tuple(int(c) for c in load.split(",") if c),
        )
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FWD:LOAD like 0:1, got {text!r}") from None
    ncpu = os.cpu_count() or 1
    for c in (*pair[0], *pair[1]):
        if not 0 <= c < ncpu:
            raise argparse.ArgumentTypeError(f"CPU {c} does not exist (0..{ncpu - 1})")
    return pair


def cmd_matrix(a: argparse.Namespace) -> int:
    from tunbench.matrix import MatrixOptions, run_matrix
    from tunbench.runstate import locked_run
    from tunbench.variants import default_matrix, parse_spec

    cells = [parse_spec(s) for s in (a.specs or default_matrix())]
    opts = _cell_options(a)
    if a.until_ci is not None and a.max_repeat < a.repeat:
        raise UsageError(f"--max-repeat {a.max_repeat} is below --repeat {a.repeat}")
    mopts = MatrixOptions(
        repeat=a.repeat,
        profile=not a.no_profile,
        native=a.native,
        flamegraph_dir=a.flamegraph_dir,
        until_ci=a.until_ci,
        max_repeat=a.max_repeat,
        seed=a.seed,
    )
    check_prerequisites()
    check_tool(opts.workload.kind)
    results.check_writable(a.results_dir)
    written: list[dict[str, Any]] = []
    adopt_orphans()
    try:
        with locked_run():
            recs = run_matrix(cells, opts, mopts, progress=not a.quiet, on_result=written.append)
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
    if a.until_ci is not None:
        _print_convergence(recs, a.until_ci, a.max_repeat)
    table = report.markdown(recs)
    print(table)
    _write_reports(recs, table, a.results_dir)
    return 1 if failed else 0


def _workload_parser() -> _Parser:
    """The workload options of ``run`` alone: what ``sweep --over`` may name besides a
    forwarder option, and how its values are read and checked."""
    p = _Parser(prog="tunbench run", add_help=False)
    _add_workload(p)
    return p


def _workload_flags(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long flags of ``p`` that take a value, except where results go."""
    return {
        flag: action
        for action in p._actions
        if action.nargs != 0 and action.dest != "results_dir"
        for flag in action.option_strings
        if flag.startswith("--")
    }


def cmd_sweep(a: argparse.Namespace) -> int:
    from tunbench import sweep
    from tunbench.matrix import MatrixOptions, run_matrix
    from tunbench.runstate import locked_run

    over = sweep.parse_over(a.over)
    wparser = _workload_parser()
    flags = _workload_flags(wparser)
    kind, points = sweep.plan_cells(a.specs, over, flags)
    out: Path = a.out or Path("results") / f"sweep-{over.name}"
    if a.results_dir is None:
        a.results_dir = out
    if a.until_ci is not None and a.max_repeat < a.repeat:
        raise UsageError(f"--max-repeat {a.max_repeat} is below --repeat {a.repeat}")
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
                _cell_options(
                    argparse.Namespace(**{**vars(a), action.dest: getattr(parsed, action.dest)})
                )
            )
        label = sweep.axis_label(over, action.help)
    else:
        opts = [_cell_options(a)] * len(over.values)
        info = points[0].cell.info
        helps = {o.flag: o.help for o in info.options()} if info else {}
        label = sweep.axis_label(over, helps.get(over.flag))
    per_cell = [opts[over.values.index(p.value)] for p in points]
    extra = [{"sweep": {"param": over.name, "value": p.value, "spec": p.spec}} for p in points]
    mopts = MatrixOptions(
        repeat=a.repeat,
        profile=not a.no_profile,
        native=False,
        flamegraph_dir=out / "flamegraph",
        until_ci=a.until_ci,
        max_repeat=a.max_repeat,
        seed=a.seed,
    )
    check_prerequisites()
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
        )
    failed = [r for r in recs if r["status"] != "ok"]
    for r in failed:
        print(f"tunbench: cell {r['spec']!r} failed: {r['error']}", file=sys.stderr)
    df = sweep.rows(recs, over, points)
    table = sweep.markdown(df, over)
    print(table)
    _write_sweep(df, over, label, table, recs, out)
    return 1 if failed else 0


def _write_sweep(
    df: Any, over: Any, label: str, table: str, recs: list[dict[str, Any]], out: Path
) -> None:
    """sweep.md, sweep.csv and sweep.html (plotly.min.js beside it) into ``out``."""
    from tunbench import sweep, sweeppage
    from tunbench.htmlpage import write_plotly_js

    first = recs[0] if recs else {}
    machine = f"kernel {first.get('kernel')}, {first.get('cpu_model')}"
    try:
        (out / "sweep.md").write_text(table + "\n")
        (out / "sweep.csv").write_text(sweep.csv(df))
        write_plotly_js(out)
        (out / "sweep.html").write_text(sweeppage.html(df, over, label, machine))
    except OSError as exc:
        raise UsageError(f"cannot write the sweep: {exc.strerror}: {exc.filename}") from exc
    print(
        f"tunbench: wrote {out / 'sweep.md'}, {out / 'sweep.csv'} and {out / 'sweep.html'}",
        file=sys.stderr,
    )


def _print_convergence(recs: list[dict[str, Any]], until_ci: float, max_repeat: int) -> None:
    from tunbench.matrix import convergence

    met, missed = convergence(recs, until_ci)
    total = len(met) + len(missed)
    print(
        f"tunbench: {len(met)} of {total} rows converged to ±{until_ci:g}% (95% CI of the mean)"
        + (f"; not within {max_repeat} runs:" if missed else ""),
        file=sys.stderr,
    )
    for spec, half, n in missed:
        width = f"±{half:.1f}%" if half is not None else "no interval"
        print(f"tunbench:   {spec}: {width} after {n} successful runs", file=sys.stderr)


def _write_reports(recs: list[dict[str, Any]], table: str, results_dir: Path) -> None:
    """This matrix's markdown table and HTML page next to its result files."""
    from tunbench.htmlreport import write_html

    (results_dir / "report.md").write_text(table + "\n")
    page = write_html(recs, results_dir / "report.html")
    print(f"tunbench: wrote {results_dir / 'report.md'} and {page}", file=sys.stderr)


def cmd_verify(a: argparse.Namespace) -> int:
    from tunbench.runstate import locked_run
    from tunbench.session import CellOptions
    from tunbench.variants import parse_spec
    from tunbench.verify import verify_cell

    cell = parse_spec(a.spec)
    check_prerequisites()
    adopt_orphans()
    with locked_run():
        rep = verify_cell(cell, CellOptions(mtu=a.mtu), _phase_printer(a.quiet))
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


def cmd_list(a: argparse.Namespace) -> int:
    from tunbench.peers.registry import CRYPTO_MODES
    from tunbench.variants import BASELINE_MODES, BASELINES, DEFAULT_MODES, PEERS, VARIANTS
    from tunio.engine import native_available

    print('variants (options after the name, e.g. "sync-gso --thread 2"):')
    helps: dict[tuple[str, str], None] = {}  # (usage, help) in order of appearance
    for variant in VARIANTS.values():
        options = variant.options()
        print(f"  {variant.name:26} {variant.summary}")
        if options:
            print(f"  {'':26} {' '.join(f'[{o.usage}]' for o in options)}")
        helps.update(((o.usage, o.help), None) for o in options)
    print("options:")
    for usage, text in helps:
        print(textwrap.fill(text, 100, initial_indent=f"  {usage:26} ", subsequent_indent=" " * 29))
    print("baselines:")
    for name, summary in BASELINES.items():
        print(f"  {name:26} {summary}")
    print("peers:")
    for name, peer in PEERS.items():
        print(f"  {name:26} {peer.summary}")
    also = (*BASELINE_MODES, *DEFAULT_MODES)
    print("default matrix also runs: " + ", ".join(repr(m) for m in also))
    print("opt-in (encrypted peers): " + ", ".join(repr(m) for m in CRYPTO_MODES))
    if not native_available():
        print("(the native offload engine is not built here: its rows are left out)")
    return 0


def _warn_skipped(paths: list[Path]) -> None:
    """One line for the JSON files of a results dir that are not tunbench results."""
    names = ", ".join(p.name for p in paths)
    print(
        f"tunbench: warning: skipped {len(paths)} file{'' if len(paths) == 1 else 's'} in "
        f"{paths[0].parent} that {'is' if len(paths) == 1 else 'are'} not tunbench results: "
        f"{names}",
        file=sys.stderr,
    )


def cmd_report(a: argparse.Namespace) -> int:
    docs = results.load_dir(a.results_dir, on_skip=_warn_skipped)
    recs = [results.flat(d) for d in docs]
    try:
        if a.format == "html":
            from tunbench.htmlreport import write_html

            print(write_html(recs, a.out or a.results_dir / "report.html"))
            return 0
        render = {"markdown": report.markdown, "csv": report.csv, "json": report.json_table}
        text = render[a.format](recs)
        if a.out:
            a.out.write_text(text + "\n")
            print(a.out)
        else:
            print(text)
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror}: {exc.filename}") from exc
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from tunbench import compare

    df, notes = compare.compare(a.old, a.new, a.min_effect / 100, on_skip=_warn_skipped)
    if a.format == "json":
        print(compare.as_json(df))
        for note in notes:
            print(f"tunbench: {note}", file=sys.stderr)
    else:
        print(compare.markdown(df, notes))
    if a.html:
        from tunbench.htmlcompare import write_compare_html

        try:
            page = write_compare_html(a.old, a.new, df, a.html)
        except OSError as exc:
            raise UsageError(f"cannot write the page: {exc.strerror}: {exc.filename}") from exc
        print(f"tunbench: wrote {page}", file=sys.stderr)
    return 0


def cmd_clean(a: argparse.Namespace) -> int:
    from tunbench.cleanup import clean

    check_prerequisites_root_only()
    for line in clean():
        print(line)
    return 0


def check_prerequisites_root_only() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError("tunbench clean needs root (CAP_NET_ADMIN)")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "matrix": cmd_matrix,
    "verify": cmd_verify,
    "list": cmd_list,
    "report": cmd_report,
    "clean": cmd_clean,
    "compare": cmd_compare,
    "sweep": cmd_sweep,
}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tunbench", description="Benchmark TUN forwarders in network namespaces.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="measure one variant (one table row)")
    r.add_argument("spec", help='variant and its arguments, e.g. "sync-gso --thread 2"')
    _add_workload(r)
    r.add_argument("--json", action="store_true", help="print the result record as JSON")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    m = sub.add_parser("matrix", help="measure many specs (default: every variant + baselines)")
    m.add_argument("specs", nargs="*", help="specs to run (default: all registered)")
    _add_workload(m)
    _add_repeats(m)
    m.add_argument("--native", action="store_true", help="Python variants: py-spy --native stacks")
    m.add_argument("--flamegraph-dir", type=Path, default=Path("flamegraph"))
    m.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    sw = sub.add_parser("sweep", help="one parameter over values: a table, a chart, a CSV")
    sw.add_argument("specs", nargs="+", help="specs to run, e.g. sync-gso async-gso")
    sw.add_argument(
        "--over",
        required=True,
        metavar="NAME=V1,V2,...",
        help="a forwarder option (thread=1,2,4) or a run option (parallel=1,2,4, mtu=1500,9000)",
    )
    _add_workload(sw)
    sw.set_defaults(results_dir=None)  # the result files go with the sweep, into --out
    sw.add_argument(
        "--out", type=Path, default=None, help="directory for everything (results/sweep-NAME)"
    )
    _add_repeats(sw)
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    v = sub.add_parser("verify", help="check a forwarder delivers TCP/UDP/ICMP byte for byte")
    v.add_argument("spec")
    v.add_argument("--mtu", type=mtu, default=1500)
    v.add_argument("--json", action="store_true", help="print the checks as JSON")
    v.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    sub.add_parser("list", help="variants, baselines and their arguments")
    rep = sub.add_parser("report", help="summary table from result files")
    rep.add_argument("--results-dir", type=Path, default=Path("results"))
    rep.add_argument("--format", choices=["markdown", "csv", "json", "html"], default="markdown")
    rep.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write here (html default: <results-dir>/report.html)",
    )
    cmp = sub.add_parser("compare", help="change per variant between two result dirs")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    cmp.add_argument(
        "--html", type=Path, default=None, metavar="OUT", help="also write the comparison page"
    )
    cmp.add_argument(
        "--min-effect",
        type=_nonneg_float,
        default=100 * MIN_EFFECT,
        metavar="PCT",
        help="smallest change of the median called faster/slower, in %% (3)",
    )
    cmp.add_argument("--format", choices=["markdown", "json"], default="markdown")
    sub.add_parser("clean", help="remove leftovers of interrupted runs (tb- namespaces, PIDs)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a command; its exit status (128+N after signal N, whenever it landed)."""
    signals.install()
    code = 1
    try:
        code = _command(argv)
    except Interrupted as exc:  # landed while an error was being reported
        code = exc.exit_code
    finally:
        late = signals.settle()
    if late is not None and code == 0:
        code = 128 + late  # the work was done, and the caller asked to stop: say so
    return code


def _command(argv: list[str] | None) -> int:
    try:
        a = build_parser().parse_args(argv)
        code = COMMANDS[a.command](a)
        signals.checkpoint()  # a signal whose first raise was swallowed still counts
        return code
    except TunbenchError as exc:
        print(f"tunbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tunbench: interrupted", file=sys.stderr)
        return 130
    except Interrupted as exc:
        name = "interrupted" if exc.signum == signal.SIGINT else "terminated"
        print(f"tunbench: {name}", file=sys.stderr)
        return exc.exit_code


def run() -> NoReturn:
    """The ``tunbench`` program: :func:`main`, then exit with its status."""
    code = main()
    signals.block_until_exit()
    sys.exit(code)


if __name__ == "__main__":
    run()
