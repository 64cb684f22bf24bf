"""The options of run, matrix and sweep that say what a cell does (workload, MTU, offered
load, placement, background check, results directory) and the CellOptions they make;
sweep reads ``--over``'s run options from the same parser."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from tunbench.analysis.cost import Offered
from tunbench.cell import placement, window
from tunbench.cell.options import CellOptions, placed, with_offered
from tunbench.cell.variants import CellSpec
from tunbench.cli.common import (
    Parser,
    background_seconds,
    bandwidth,
    cpus,
    nonneg_float,
    offered_rate,
    percent,
    window_bytes,
)
from tunbench.errors import UsageError
from tunbench.load.workloads import WorkloadOptions
from tunio.argtypes import mtu, nonneg_int, positive_int


def add_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=positive_int, default=10, help="seconds measured (10)")
    p.add_argument("--omit", type=nonneg_int, default=1, help="warm-up seconds not counted (1)")
    p.add_argument("--mtu", type=mtu, default=1500, help="MTU of both devices, bytes (1500)")
    p.add_argument("--parallel", type=positive_int, default=1, help="iperf3 streams (1)")
    p.add_argument("--reverse", action="store_true", help="server sends (b -> a)")
    p.add_argument("--udp", action="store_true", help="UDP instead of TCP")
    p.add_argument(
        "--bandwidth",
        type=bandwidth,
        default=0,
        metavar="RATE",
        help="target bits/s, k/M/G suffixes (100M); UDP: 0 = unlimited",
    )
    p.add_argument(
        "--window",
        type=window_bytes,
        default=0,
        metavar="BYTES|auto",
        help="stream: socket buffer on both ends (iperf3 -w), K/M suffixes, which caps the "
        "bytes in flight (0: the kernel's autotuning); auto: a third of the TUN queue for "
        "rows that move MTU-sized packets, so TCP never overflows it; 0 for the others",
    )
    add_workload_kinds(p)
    p.add_argument(
        "--grace",
        type=positive_int,
        default=20,
        help="seconds past duration+omit before iperf3 counts as hung (20)",
    )
    p.add_argument(
        "--ready-timeout",
        type=positive_int,
        default=10,
        metavar="SECONDS",
        help="how long a forwarder may take to create its TUN devices (10)",
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="ping through the forwarder during the run: RTT p50/p99",
    )
    p.add_argument(
        "--cpus",
        type=cpus,
        default=None,
        metavar="FWD:LOAD",
        help="pin the forwarder and the iperf3/ping processes, e.g. 0:1",
    )
    p.add_argument(
        "--placement",
        choices=placement.MODES,
        default=None,
        help="split: the forwarder on a CPU of its own, load and harness on the others "
        "(default on 2+ CPUs; multi-thread rows stay unpinned); shared: all on one CPU; "
        "none: unpinned",
    )
    p.add_argument(
        "--steer-receive",
        action="store_true",
        help="with the forwarder pinned apart from its load: steer the receive work of the "
        "packets it writes (the endpoints' IP and TCP) to the load CPUs (RPS), so its CPU "
        "holds its own work only",
    )
    p.add_argument(
        "--offered",
        type=offered_rate,
        default=None,
        metavar="RATE|auto",
        help="stream: pace iperf3 at RATE bits/s (k/M/G suffixes) and make the row's figure "
        "its cost, Gbit/s per core; auto: 50%% of the capacity of the slowest row of each "
        "group of rows within 3x of each other (one group when paired)",
    )
    p.add_argument(
        "--background-limit",
        type=percent,
        default=15.0,
        metavar="PCT",
        help="whole-machine CPU before traffic (%% of one core) above which a run is noisy (15)",
    )
    p.add_argument(
        "--background-wait",
        type=nonneg_float,
        default=3.0,
        metavar="S",
        help="seconds to wait for the machine to get quiet before running anyway (3)",
    )
    p.add_argument(
        "--background-seconds",
        type=background_seconds,
        default=float(os.environ.get("TUNBENCH_BACKGROUND_SECONDS", "1")),
        metavar="S",
        help="how long one background check measures, >= 0.1 "
        "(1; default from $TUNBENCH_BACKGROUND_SECONDS)",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    add_revision(p)


def add_revision(p: argparse.ArgumentParser) -> None:
    """``--rev`` and ``--testbed``: what ``tunbench history`` files each result under."""
    p.add_argument(
        "--rev",
        default=None,
        metavar="REV",
        help="the forwarder's revision, any string (default: an external forwarder's git "
        "work tree's `git describe --always --dirty`; built-in rows: tunbench's commit)",
    )
    p.add_argument(
        "--testbed",
        default=None,
        metavar="NAME",
        help="the testbed the history files results under (default: the host's label)",
    )


def add_workload_kinds(p: argparse.ArgumentParser) -> None:
    """Workloads beyond one iperf3 stream (tunbench/load/workloads.py); each is its own row."""
    from tunbench.load.workloads import IPERF_PROCS, KINDS

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
        type=nonneg_float,
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


def workload_options(a: argparse.Namespace) -> WorkloadOptions:
    """The WorkloadOptions of the command line; UsageError for an option of another kind.

    Options a kind does not use stay None, so they never split rows."""
    from tunbench.load.sockperf import MIN_SIZE
    from tunbench.load.workloads import MIN_PKT

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
            ("--offered", a.offered is not None, ("stream",)),
            ("--window", bool(getattr(a, "window", 0)), ("stream",)),
        )
        if given and kind not in kinds
    ]
    if wrong:
        raise UsageError(f"{' and '.join(wrong)}: not an option of --workload {kind}")
    if a.bidir and (a.udp or a.reverse):
        raise UsageError("--bidir runs both directions over TCP: no --udp or --reverse")
    if a.offered is not None and (a.bidir or a.bandwidth):
        raise UsageError("--offered sets the rate itself: no --bandwidth or --bidir beside it")
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


def cell_options(a: argparse.Namespace) -> CellOptions:
    """The options every cell of the command shares (placement is per cell:
    :func:`placed_options`); paced at ``--offered RATE`` when a rate is given (``auto`` is
    the matrix's to choose)."""
    from tunbench.load.iperf3 import ClientOptions

    fwd_cpus, load_cpus = a.cpus if a.cpus else ((), ())
    workload = workload_options(a)
    opts = CellOptions(
        workload=workload,
        results_dir=a.results_dir,
        mtu=a.mtu,
        latency=a.latency,
        steer_receive=getattr(a, "steer_receive", False),
        grace=float(a.grace),
        ready_timeout=float(a.ready_timeout),
        fwd_cpus=fwd_cpus,
        load_cpus=load_cpus,
        background_limit=a.background_limit,
        background_wait=a.background_wait,
        background_seconds=a.background_seconds,
        rev=getattr(a, "rev", None) or None,
        testbed=getattr(a, "testbed", None) or None,
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
            window=a.window if isinstance(getattr(a, "window", 0), int) else 0,
        ),
    )
    rate = getattr(a, "offered", None)
    return with_offered(opts, Offered(rate)) if isinstance(rate, float) else opts


def placed_options(
    a: argparse.Namespace, cells: Sequence[CellSpec], base: CellOptions | Sequence[CellOptions]
) -> list[CellOptions]:
    """Each cell's options: ``base`` (one for all, or one per cell) pinned as
    ``--placement``/``--cpus`` (or the default) says for that cell."""
    allowed = sorted(os.sched_getaffinity(0))
    bases = [base] * len(cells) if isinstance(base, CellOptions) else list(base)
    if getattr(a, "window", 0) == "auto":
        bases = [window.auto(c, o) for c, o in zip(cells, bases, strict=True)]
    return [
        placed(o, placement.resolve(c, getattr(a, "placement", None), a.cpus, allowed))
        for c, o in zip(cells, bases, strict=True)
    ]


def workload_parser() -> Parser:
    """The workload options of ``run`` alone: what ``sweep --over`` may name besides a
    forwarder option, and how its values are read and checked."""
    p = Parser(prog="tunbench run", add_help=False)
    add_workload(p)
    return p


def workload_flags(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long flags of ``p`` that take a value, except where results go and what they are
    filed under (``--rev``, ``--testbed``)."""
    return {
        flag: action
        for action in p._actions
        if action.nargs != 0 and action.dest not in ("results_dir", "rev", "testbed")
        for flag in action.option_strings
        if flag.startswith("--")
    }
