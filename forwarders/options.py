"""The command line every forwarder shares: harness arguments, variant options, their checks.

A forwarder is started as ``python -m forwarders.<module> --iface1 tun11 --ip1 10.0.1.1
--iface2 tun22 --ip2 10.0.2.1 [--mtu N] [--stats FILE] [variant options]``. The harness
validates a spec's options with the same parser (``raise_errors``), so a bad option is one
line before anything is created, and ``tunbench list`` shows what :meth:`add_option` declared.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tunio.argtypes import mtu, nonneg_int, positive_int
from tunio.engine import engine_arg

# Most frames the --gso split path reads back to back before coalescing their segments:
# wireguard-go's and tun-rs's IdealBatchSize (KERNEL-NOTES §3.1).
BATCH = 128


class ForwarderArgumentError(Exception):
    """Raised instead of exiting when the harness validates arguments."""


@dataclass(frozen=True)
class Option:
    """An option a spec may give a variant, as ``tunbench list`` shows it."""

    flag: str
    metavar: str  # what follows the flag: "N", "passthrough|split", or "" for a switch
    help: str
    default: Any

    @property
    def usage(self) -> str:
        return f"{self.flag} {self.metavar}" if self.metavar else self.flag


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`ForwarderArgumentError` when ``raise_errors`` is set,
    and that knows which of its options belong to the harness and which to the variant."""

    raise_errors = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.harness_flags: list[str] = []
        self.options: list[Option] = []
        self.checks: list[Callable[[argparse.Namespace], str | None]] = []

    def add_check(self, check: Callable[[argparse.Namespace], str | None]) -> None:
        """A rule across options: ``check(parsed)`` returns what is wrong, or None."""
        self.checks.append(check)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, rest = super().parse_known_args(args, namespace)
        for check in self.checks:
            problem = check(parsed)
            if problem:
                self.error(problem)
        return parsed, rest

    def add_harness_argument(self, flag: str, **kwargs: Any) -> None:
        """An argument the harness always passes itself; a spec must not give it."""
        self.add_argument(flag, **kwargs)
        self.harness_flags.append(flag)

    def add_option(self, flag: str, **kwargs: Any) -> None:
        """A variant option: a spec may give it, ``tunbench list`` shows it. A default
        other than None is appended to its help."""
        action = self.add_argument(flag, **kwargs)
        metavar = ""  # a switch takes no value
        if action.nargs != 0:
            if action.default is not None:
                action.help = f"{action.help} (default {action.default})"
            if action.choices is not None:
                metavar = "|".join(str(c) for c in action.choices)
            else:
                metavar = str(action.metavar or action.dest.upper())
        self.options.append(Option(flag, metavar, action.help or "", action.default))

    def error(self, message: str) -> NoReturn:
        if self.raise_errors:
            raise ForwarderArgumentError(message)
        super().error(message)

    def print_help(self, file: Any = None) -> None:
        if self.raise_errors:  # validating a spec: --help would end the forwarder at once
            raise ForwarderArgumentError("--help shows the options and exits; see tunbench list")
        super().print_help(file)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if self.raise_errors:  # any other action that would end the forwarder at once
            raise ForwarderArgumentError(message or f"an option would exit with status {status}")
        super().exit(status, message)


def base_parser(prog: str, description: str) -> ArgumentParser:
    """The arguments every forwarder takes (compatible with the Rust reference's flags)."""
    # No abbreviations: "--mt 9000" must not slip past the harness's reserved --mtu.
    p = ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    p.add_harness_argument("--iface1", default="tun11")
    p.add_harness_argument("--ip1", default="10.0.1.1")
    p.add_harness_argument("--iface2", default="tun22")
    p.add_harness_argument("--ip2", default="10.0.2.1")
    p.add_harness_argument("--mtu", type=mtu, default=1500)
    p.add_harness_argument("--stats", type=Path, default=None, help="write counters here on exit")
    p.add_harness_argument(
        "--configure",
        action="store_true",
        help="standalone use: set MTU, address /24 and up on both devices",
    )
    return p


def add_spin_option(p: ArgumentParser) -> None:
    """``--spin-ns``: the positive control, a known extra cost per frame written (a variant
    whose writes go through :meth:`forwarders.counters.Counters.wrote`)."""
    p.add_option(
        "--spin-ns",
        type=nonneg_int,
        default=None,
        metavar="NS",
        help="positive control: busy-wait NS ns per frame written, a known extra cost "
        "per packet (default: $TUNBENCH_SPIN_NS, else 0)",
    )
    p.add_option(
        "--cpu-quota",
        type=_quota_percent,
        default=None,
        metavar="PCT",
        help="positive control: run in a cgroup of its own limited to PCT %% of one CPU "
        "(95.24: every packet 5 %% more of a core's time)",
    )


def _quota_percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text}: 1..100 (% of one CPU)")
    return value


def add_thread_options(p: ArgumentParser) -> None:
    p.add_option(
        "--thread",
        type=positive_int,
        default=1,
        metavar="N",
        help="threads per direction",
    )
    p.add_option(
        "--multiqueue",
        action="store_true",
        help="give each thread its own queue fd (IFF_MULTI_QUEUE); needs --thread 2 or more",
    )
    # One thread has one queue either way: the flag would silently change nothing.
    p.add_check(
        lambda a: (
            "--multiqueue needs --thread 2 or more (one queue per thread)"
            if a.multiqueue and a.thread < 2
            else None
        )
    )


def add_gso_options(p: ArgumentParser, batch: bool = True) -> None:
    """``--gso``, ``--engine``, ``--batch`` and ``--no-verify``; ``batch=False`` for a variant
    whose own ``--batch`` also bounds the split path's batches (the uring ones)."""
    p.add_option(
        "--gso",
        choices=["passthrough", "split"],
        default="passthrough",
        help="passthrough: relay super-packets and their header; split: segment "
        "and coalesce again (what a VPN does)",
    )
    p.add_option(
        "--engine",
        type=engine_arg,
        default="python",
        metavar="python|native",
        help="with --gso split: who splits and coalesces, the pure-Python engine or the C "
        "one (tunio._native, built by scripts/bootstrap.sh)",
    )
    if batch:
        p.add_option(
            "--batch",
            type=positive_int,
            default=BATCH,
            metavar="N",
            help="with --gso split: most frames read back to back before their packets are "
            "coalesced together",
        )
    p.add_option(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="with --gso split: trust the L4 checksums of the packets being coalesced "
        "that arrived with one of their own (not split from a NEEDS_CSUM super-packet, "
        "whose segments' checksums the split computes and never re-verifies) instead of "
        "verifying them (the kernel recomputes a merged frame's checksum, so a corrupt "
        "packet would then be hidden, not dropped)",
    )
