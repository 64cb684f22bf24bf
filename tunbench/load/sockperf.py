"""sockperf ping-pong: request/response transactions and their round-trip percentiles.

Contract as every runner: ``*_argv`` builds the child command (the session starts it in a
namespace with :func:`tunbench.system.procs.spawn`, waits on it with a deadline and stops it with
:func:`tunbench.system.procs.stop`), :func:`parse` turns its output (the child's log) into numbers.

The client sends one ``--rr-size`` message over TCP, waits for the server's echo, sends the
next (``ping-pong``, no pacing: as many transactions as the path allows) and prints, for
the valid part of the run (after its own warm-up), how many replies came back in how many
seconds and the round-trip percentiles (``--full-rtt``: the whole round trip, not half of
it), in microseconds. sockperf rather than iperf 2's ``--bounceback``: iperf 2 reports
percentiles only from a histogram of 100 µs bins, coarser than the numbers being measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tunbench.errors import MeasurementError
from tunbench.load import require

DEFAULT_PORT = 5202
PROGRAM = "sockperf"
MIN_SIZE = 14  # sockperf's smallest message (its header)

_VALID = re.compile(
    r"\[Valid Duration\] RunTime=(?P<s>[\d.]+) sec; SentMessages=(?P<sent>\d+); "
    r"ReceivedMessages=(?P<recv>\d+)"
)
_PCT = re.compile(r"---> percentile (?P<q>[\d.]+) =\s*(?P<v>[\d.]+)")
_AVG = re.compile(r"avg-(?:rtt|lat)=(?P<v>[\d.]+)")


@dataclass(frozen=True)
class RrResult:
    """Transactions per second and round-trip percentiles (µs) of the valid window."""

    transactions: int
    seconds: float
    transactions_per_s: float
    avg_us: float | None
    percentiles_us: dict[str, float]  # "50.000" -> µs, as sockperf prints them

    def p(self, q: float) -> float | None:
        return self.percentiles_us.get(f"{q:.3f}")


def check_available() -> str:
    """The path of sockperf, or PrerequisiteError naming the Debian package."""
    return require(PROGRAM, "sockperf")


def server_argv(bind: str, port: int = DEFAULT_PORT) -> list[str]:
    return [PROGRAM, "server", "--tcp", "-i", bind, "-p", str(port)]


def client_argv(server: str, port: int, duration: int, size: int) -> list[str]:
    return [
        PROGRAM,
        "ping-pong",
        "--tcp",
        "-i",
        server,
        "-p",
        str(port),
        "-t",
        str(duration),
        "-m",
        str(size),
        "--full-rtt",
    ]


def parse_text(text: str) -> RrResult:
    """Numbers from a ping-pong client's output; MeasurementError if they are not there."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # sockperf colours some lines
    valid = _VALID.search(text)
    pcts = {m["q"]: float(m["v"]) for m in _PCT.finditer(text)}
    if valid is None or "50.000" not in pcts:
        last = text.strip().splitlines()[-1:] or ["no output"]
        raise MeasurementError(f"sockperf printed no ping-pong summary: {last[0]}")
    seconds, received = float(valid["s"]), int(valid["recv"])
    if seconds <= 0 or received == 0:
        raise MeasurementError("sockperf: no transaction completed")
    avg = _AVG.search(text)
    return RrResult(
        transactions=received,
        seconds=seconds,
        transactions_per_s=received / seconds,
        avg_us=float(avg["v"]) if avg else None,
        percentiles_us=pcts,
    )


def parse(path: Path) -> RrResult:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise MeasurementError(f"sockperf wrote no output ({exc})") from exc
    return parse_text(text)
