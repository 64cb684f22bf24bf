"""iperf 2's ``--connect-only``: new TCP connections per second (connect, close).

Contract as every runner: ``*_argv`` builds the child command (started in a namespace with
:func:`tunbench.system.procs.spawn`, waited on with a deadline, stopped with
:func:`tunbench.system.procs.stop`), :func:`parse` reads what it wrote.

iperf 2 (2.1) makes a fixed number of connections (``--connect-only=N``) but ignores ``-t``
for them, so the child (``python -m tunbench.load.iperf2 crr ...``) runs it in batches
of ``--batch`` connections until ``--duration`` seconds have passed, adds up each batch's
``(tot/err)`` line (printed with ``-e``) and times the whole on the monotonic clock. Each
connection is a three-way handshake and a close with no data: iperf 2 sends nothing over it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tunbench.errors import MeasurementError
from tunbench.load import require

DEFAULT_PORT = 5203
PROGRAM = "iperf"
BATCH = 500
_TOTALS = re.compile(r"\(tot/err\) = (?P<tot>\d+)/(?P<err>\d+)")


@dataclass(frozen=True)
class CrrResult:
    connections: int
    errors: int
    seconds: float
    connections_per_s: float
    mono_start: float
    mono_end: float


def check_available() -> str:
    """The path of iperf 2, or PrerequisiteError naming the Debian package."""
    return require(PROGRAM, "iperf", "iperf (iperf 2)")


def server_argv(bind: str, port: int = DEFAULT_PORT) -> list[str]:
    return [PROGRAM, "-s", "-B", bind, "-p", str(port)]


def crr_argv(server: str, port: int, duration: int, out: Path, batch: int = BATCH) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tunbench.load.iperf2",
        "crr",
        "--server",
        server,
        "--port",
        str(port),
        "--duration",
        str(duration),
        "--batch",
        str(batch),
        "--out",
        str(out),
    ]


def parse_connect_only(text: str) -> tuple[int, int]:
    """``(connections, errors)`` from one ``iperf -c --connect-only=N`` output."""
    found = list(_TOTALS.finditer(text))
    if not found:
        last = text.strip().splitlines()[-1:] or ["no output"]
        raise MeasurementError(f"iperf --connect-only printed no totals: {last[0]}")
    return int(found[-1]["tot"]), int(found[-1]["err"])


def parse(path: Path) -> CrrResult:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"iperf 2 connect test wrote no usable result ({exc})") from exc
    if doc.get("error"):
        raise MeasurementError(f"iperf 2: {doc['error']}")
    seconds = float(doc["mono_end"]) - float(doc["mono_start"])
    good = int(doc["connections"]) - int(doc["errors"])
    return CrrResult(
        connections=int(doc["connections"]),
        errors=int(doc["errors"]),
        seconds=seconds,
        connections_per_s=good / seconds if seconds > 0 else 0.0,
        mono_start=float(doc["mono_start"]),
        mono_end=float(doc["mono_end"]),
    )


def _child(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tunbench.load.iperf2")
    p.add_argument("role", choices=["crr"])
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    cmd = [PROGRAM, "-c", a.server, "-p", str(a.port), "-e", f"--connect-only={a.batch}"]
    total = errors = batches = 0
    error = None
    start = time.monotonic()
    try:
        while time.monotonic() - start < a.duration:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            try:
                tot, err = parse_connect_only(run.stdout + run.stderr)
            except MeasurementError as exc:
                error = str(exc)
                break
            total, errors, batches = total + tot, errors + err, batches + 1
    except KeyboardInterrupt:  # stopped by the harness
        return 130
    except subprocess.TimeoutExpired:
        error = "a batch of connections hung for 60 s"
    end = time.monotonic()
    doc = {
        "connections": total,
        "errors": errors,
        "batches": batches,
        "batch": a.batch,
        "mono_start": start,
        "mono_end": end,
        "error": error,
    }
    tmp = Path(a.out + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(a.out)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
