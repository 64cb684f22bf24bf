"""What the subcommands share: the parser that raises UsageError, number types for
options, the rounds options of matrix and sweep, the prerequisite check, the progress
printer. The options that say what a cell does are :mod:`tunbench.cli.cellargs`'."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from tunbench.errors import PrerequisiteError, UsageError
from tunio.argtypes import nonneg_int, positive_int


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
