"""What the subcommands share: the parser that raises UsageError, number types for
options, the rounds options of matrix and sweep, the prerequisite check, the progress
printer. The options that say what a cell does are :mod:`tunbench.cli.cellargs`'."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tunbench.errors import PrerequisiteError, UsageError
from tunio.argtypes import nonneg_int, positive_int

if TYPE_CHECKING:
    from tunbench.plan.matrix import MatrixOptions

RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*$")
SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


class Parser(argparse.ArgumentParser):
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
    from tunbench.load.iperf3 import check_available

    return check_available()


def add_repeats(m: argparse.ArgumentParser) -> None:
    """matrix's and sweep's rounds: --repeat, --until-ci, --max-repeat, --seed, --no-profile."""
    m.add_argument("--repeat", type=positive_int, default=3, help="runs per cell (3)")
    m.add_argument(
        "--until-ci",
        type=percent,
        default=None,
        metavar="PCT",
        help="after --repeat rounds, rerun cells until their 95%% CI is within ±PCT%% of the mean",
    )
    m.add_argument(
        "--resolve",
        type=percent,
        default=None,
        metavar="PCT",
        help="after --repeat rounds, plan as many as each row's spread needs for a ±PCT%% "
        "95%% interval (paired rows: of their log ratio to the first spec), at most --max-repeat",
    )
    m.add_argument(
        "--max-repeat",
        type=positive_int,
        default=8,
        metavar="M",
        help="with --until-ci or --resolve: at most M runs per cell (8)",
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
    m.add_argument(
        "--no-diagnose",
        action="store_true",
        help="skip the diagnostic passes (perf stat: syscalls, context switches per packet)",
    )
    m.add_argument(
        "--capacity-repeat",
        type=nonneg_int,
        default=None,
        metavar="N",
        help="with --offered: unpaced capacity rounds before the paced ones (--repeat's; "
        "auto needs 1 or more)",
    )


def matrix_options(a: argparse.Namespace, flamegraphs: Path, native: bool) -> MatrixOptions:
    """matrix's and sweep's MatrixOptions from their rounds options; UsageError where they
    contradict each other."""
    from tunbench.plan.matrix import MatrixOptions

    if a.until_ci is not None and a.resolve is not None:
        raise UsageError("--until-ci and --resolve are two ways to choose the rounds: give one")
    if (a.until_ci is not None or a.resolve is not None) and a.max_repeat < a.repeat:
        raise UsageError(f"--max-repeat {a.max_repeat} is below --repeat {a.repeat}")
    if a.resolve is not None and a.repeat < 2:
        raise UsageError("--resolve estimates the spread from the first --repeat rounds: 2 or more")
    auto = a.offered == "auto"
    capacity = a.repeat if a.capacity_repeat is None else a.capacity_repeat
    if a.capacity_repeat is not None and a.offered is None:
        raise UsageError("--capacity-repeat: only with --offered (a paced matrix)")
    if auto and capacity < 1:
        raise UsageError(
            "--offered auto takes its rate from the capacity rounds: --capacity-repeat 1 or more"
        )
    return MatrixOptions(
        repeat=a.repeat,
        profile=not a.no_profile,
        native=native,
        flamegraph_dir=flamegraphs,
        until_ci=a.until_ci,
        max_repeat=a.max_repeat,
        seed=a.seed,
        diagnose=not a.no_diagnose,
        offered_auto=auto,
        capacity_repeat=capacity,
        resolve=a.resolve,
        paired=bool(getattr(a, "paired", False)),
    )


def print_offered(recs: list[dict[str, Any]], auto: bool) -> None:
    """A line per offered rate the paced rows ran at and how it was chosen, with the rows
    that shared it when ``--offered auto`` chose one per group (or that it found no
    capacity to choose from)."""
    rates: dict[tuple[float, str], list[str]] = {}
    for r in recs:
        if r.get("offered"):
            rows = rates.setdefault((r["offered"]["bps"], r["offered"]["how"]), [])
            if r["offered"].get("group") and r["spec"] not in rows:
                rows.append(str(r["spec"]))
    for (bps, how), rows in rates.items():
        who = f" for {', '.join(rows)}" if rows else ""
        print(f"tunbench: offered load {bps / 1e9:.4g} Gbit/s{who} ({how})", file=sys.stderr)
    if not rates and auto:
        print(
            "tunbench: --offered auto: no row with a forwarder measured a capacity, "
            "so no paced rows ran",
            file=sys.stderr,
        )


def print_plan(rows: list[Any]) -> None:
    """--resolve's plan, once its first stage is done; loudly where --max-repeat caps it."""
    for row in rows:
        print(f"tunbench: --resolve: {row.text}", file=sys.stderr, flush=True)
    capped = [row.spec for row in rows if row.capped]
    if capped:
        print(
            f"tunbench: warning: --max-repeat stops {len(capped)} row(s) short of "
            f"±{rows[0].pct:g}%: {', '.join(capped)}",
            file=sys.stderr,
            flush=True,
        )


def percent(text: str) -> float:
    value = nonneg_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a percentage above 0, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _bits(text: str, expected: str) -> float:
    """A number of bits/s with an optional k/M/G (10^3, 10^6, 10^9) suffix."""
    m = RATE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return float(m.group(1)) * SUFFIX[m.group(2).lower()]


def offered_rate(text: str) -> float | str:
    """``--offered``: ``auto``, or a rate in bits/s with an optional k/M/G (10^3, 10^6,
    10^9) suffix: ``1.5G``, ``800M``, ``2e9``."""
    if text.strip().lower() == "auto":
        return "auto"
    value = _bits(text, "a rate like 1.5G, 800M or auto")
    if value < 1e3:
        raise argparse.ArgumentTypeError(f"{text}: at least 1k bits/s")
    return value


def bandwidth(text: str) -> int:
    """``--bandwidth``: bits/s, a whole number or a rate with a k/M/G suffix as
    :func:`offered_rate` takes it (``100M``); 0 = unlimited."""
    if text.strip() == "0":
        return 0
    value = _bits(text, "bits/s like 100M, 1.5G or 0")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: at least 1 bit/s (0: unlimited)")
    return round(value)


def window_bytes(text: str) -> int | str:
    """``--window``: ``auto``, or socket buffer bytes, a whole number or with a K/M
    (2^10, 2^20) suffix as iperf3 -w takes it: ``512K``, ``4M``; 0 = the kernel's
    default."""
    if text.strip().lower() == "auto":
        return "auto"
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected bytes like 512K, 4M, 0 or auto, got {text!r}")
    value = int(m.group(1)) << {"": 0, "k": 10, "m": 20}[m.group(2).lower()]
    if 0 < value < 4096:
        raise argparse.ArgumentTypeError(f"{text}: at least 4K (0: the kernel's default)")
    return value


def background_seconds(text: str) -> float:
    value = nonneg_float(text)
    if value < 0.1:
        raise argparse.ArgumentTypeError(f"{text}: at least 0.1 s")
    return value


def cpus(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
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


def phase_printer(quiet: bool) -> Callable[[str], None]:
    def show(phase: str) -> None:
        if not quiet:
            print(f"tunbench: {phase}", file=sys.stderr, flush=True)

    return show


def warn_skipped(paths: list[Path]) -> None:
    """One line for the JSON files of a results dir that are not tunbench results."""
    names = ", ".join(p.name for p in paths)
    print(
        f"tunbench: warning: skipped {len(paths)} file{'' if len(paths) == 1 else 's'} in "
        f"{paths[0].parent} that {'is' if len(paths) == 1 else 'are'} not tunbench results: "
        f"{names}",
        file=sys.stderr,
    )
