"""The diagnostic pass: ``perf stat`` counts on the forwarder's threads, per packet.

Counting a tracepoint costs every event it counts (~30 ns per syscall), so like the
profiling pass this is a separate run whose throughput is not measured: the harness
attaches ``perf stat -x, -p PIDS`` to the forwarder (a peer's daemons, not their
launcher) while one stream runs, stops it with SIGINT (it writes its counts then), and
divides by the frames the forwarder wrote (its own counters, or the TUN devices').

Software events work everywhere: ``raw_syscalls:sys_enter`` (syscalls), ``context-switches``,
``cpu-migrations``, ``task-clock``. Hardware counters (``instructions``, ``cycles``) need a
PMU, which a VM guest often lacks: :func:`hardware_counters` asks ``perf stat -e
instructions true`` once, and without them the pass says so in one line
(:data:`NO_PMU`) instead of printing zeros.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunbench.system.procs import run_output

SOFTWARE = ("raw_syscalls:sys_enter", "context-switches", "cpu-migrations", "task-clock")
HARDWARE = ("instructions", "cycles")
NO_PMU = "no hardware counters on this machine (perf stat -e instructions: not supported)"
# result key of each event's count per packet
PER_PACKET = {
    "raw_syscalls:sys_enter": "syscalls_per_packet",
    "context-switches": "cswitches_per_packet",
    "cpu-migrations": "migrations_per_packet",
    "instructions": "instructions_per_packet",
    "cycles": "cycles_per_packet",
}


@functools.cache
def hardware_counters(perf: str = "perf") -> bool:
    """Whether ``perf stat`` can count instructions here (not in a guest without a PMU)."""
    try:
        status, out, err = run_output([perf, "stat", "-x", ",", "-e", "instructions", "true"], 10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    counts = parse(err + out)
    return status == 0 and counts.get("instructions") is not None


def events(hw: bool) -> list[str]:
    return [*SOFTWARE, *(HARDWARE if hw else ())]


def argv(pids: Sequence[int], out: Path, perf: str = "perf", hw: bool = False) -> list[str]:
    """Count :func:`events` on the threads of ``pids`` into ``out`` (CSV) until SIGINT."""
    attach = ",".join(map(str, pids))
    return [perf, "stat", "-x", ",", "-o", str(out), "-e", ",".join(events(hw)), "-p", attach]


def parse(text: str) -> dict[str, float | None]:
    """``perf stat -x,`` output: event -> count (None: ``<not supported>``/``<not
    counted>``). A line is ``value,unit,event,run time,share,...``; ``#`` lines are
    comments."""
    counts: dict[str, float | None] = {}
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        value, event = parts[0], parts[2]
        if not event:
            continue
        try:
            counts[event] = float(value)
        except ValueError:
            counts[event] = None  # <not supported>, <not counted>
    return counts


def per_packet(counts: Mapping[str, float | None], packets: float | None) -> dict[str, Any]:
    """Each counted event per packet (:data:`PER_PACKET`'s keys; None where it was not
    counted or no packets are known)."""
    return {
        key: (v / packets if (v := counts.get(event)) is not None and packets else None)
        for event, key in PER_PACKET.items()
    }
