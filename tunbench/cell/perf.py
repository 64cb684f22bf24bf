"""``perf record`` on a native (external) forwarder, for its flamegraph.

Contract as every runner: :func:`argv` builds the child command (``perf record -g -p PIDS``,
run in the host namespace, stopped with SIGINT like py-spy), :func:`parse` reads what it
wrote: ``perf script`` over the data file, folded into one line per distinct stack.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tunbench.errors import MeasurementError
from tunbench.system.procs import run_output

RATE_HZ = 499  # odd, so sampling does not lock step with periodic work


def available() -> str | None:
    """The perf binary, or None when it is not installed (Debian package linux-perf)."""
    return shutil.which("perf")


def argv(pids: Sequence[int], data: Path, perf: str = "perf") -> list[str]:
    """Record the processes ``pids`` (a forwarder, or a peer launcher and its daemons)."""
    attach = ",".join(map(str, pids))
    return [perf, "record", "-F", str(RATE_HZ), "-g", "-p", attach, "-o", str(data), "-q"]


def parse(data: Path, perf: str = "perf", timeout: float = 120.0) -> Counter[str]:
    """Folded stacks (``comm;outer;...;leaf`` -> samples) from a ``perf record`` file."""
    if not data.exists() or data.stat().st_size == 0:
        raise MeasurementError("perf wrote no samples")
    try:
        status, out, err = run_output([perf, "script", "-i", str(data)], timeout)
    except subprocess.TimeoutExpired as exc:
        raise MeasurementError(f"perf script took over {timeout:.0f}s (killed)") from exc
    if status != 0:
        tail = err.strip().splitlines()[-1:] or ["no output"]
        raise MeasurementError(f"perf script failed: {tail[0]}")
    return fold(out)


def fold(script: str) -> Counter[str]:
    """Fold ``perf script`` text: a header line per sample, then its frames leaf first."""
    stacks: Counter[str] = Counter()
    comm: str | None = None
    frames: list[str] = []

    def flush() -> None:
        if comm is not None:
            stacks[";".join([comm, *reversed(frames)])] += 1

    for line in script.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():  # "socat  1234 [001] 12.34: 1 cycles:P:"
            flush()
            comm, frames = line.split(None, 1)[0], []
        elif comm is not None:
            frames.append(_frame(line.strip()))
    flush()
    return stacks


def _frame(line: str) -> str:
    """``ffff8123 tun_get_user+0x12 ([kernel.kallsyms])`` -> ``tun_get_user``."""
    _, _, rest = line.partition(" ")
    sym, _, dso = rest.rpartition(" (")
    sym = sym.split("+0x")[0].strip() or "[unknown]"
    if sym == "[unknown]":
        return f"[{Path(dso.rstrip(')')).name.strip('[]') or 'unknown'}]"
    return sym.replace(";", ":")
