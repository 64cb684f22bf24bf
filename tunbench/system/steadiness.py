"""How steady this machine's CPUs are: a fixed piece of pure-Python work, timed again and
again on each CPU in turn by the harness's own thread pinned there.

On a shared VM a vCPU's speed changes from one moment to the next and from day to day
(seen here: 10-16 % between 1 s bins of the same loop one day, the two vCPUs independent
of each other; 0.5-2.8 % between this probe's 50 ms bins the next). A cost
figure is CPU time per byte moved, so it moves with the CPU's speed: this spread is a
floor under the run-to-run spread of a cost row that pairing rounds cannot remove. The
matrix measures it before its rounds, prints it in one line and records it with every
run (``cpu_speed``). Speed is work per second of the thread's own CPU time, so
time the thread spent waiting for the CPU is not counted; other load on the CPU is the
background check's business (:mod:`tunbench.system.sampler`).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

SECONDS = 0.5  # CPU time spent per CPU (the probe adds this per CPU to a matrix)
BIN_S = 0.05  # CPU time per bin: the spread is between bins of this length
CHUNK = 2_000  # loop turns per timed chunk (~0.1-0.3 ms here)


@dataclass(frozen=True)
class Speed:
    """One CPU's speed over the probe: bins measured and their coefficient of variation."""

    cpu: int
    bins: int
    cv_percent: float

    def to_json(self) -> dict[str, float]:
        return {"cpu": self.cpu, "bins": self.bins, "cv_percent": round(self.cv_percent, 2)}


def cv_percent(rates: Sequence[float]) -> float:
    """Sample standard deviation of ``rates`` in % of their mean (0 for fewer than 2)."""
    if len(rates) < 2:
        return 0.0
    return 100 * statistics.stdev(rates) / statistics.fmean(rates)


def _chunk() -> int:
    acc = 0
    for i in range(CHUNK):
        acc ^= i * 31
    return acc


def _bins(seconds: float, bin_s: float) -> list[float]:
    """Chunks per CPU-second in consecutive bins of ``bin_s`` of this thread's CPU time."""
    rates: list[float] = []
    spent = 0.0
    while spent < seconds:
        start = time.thread_time()
        n = 0
        while (used := time.thread_time() - start) < bin_s:
            _chunk()
            n += 1
        rates.append(n / used)
        spent += used
    return rates


def measure(cpus: Sequence[int], seconds: float = SECONDS, bin_s: float = BIN_S) -> list[Speed]:
    """Each CPU of ``cpus`` in turn: this thread pinned there, ``seconds`` of CPU time in
    bins of ``bin_s``; the thread's affinity is put back afterwards, whatever happens."""
    before = os.sched_getaffinity(0)
    out = []
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            rates = _bins(seconds, bin_s)
            out.append(Speed(cpu, len(rates), cv_percent(rates)))
    finally:
        os.sched_setaffinity(0, before)
    return out


def line(speeds: Sequence[Speed]) -> str:
    """One line for the terminal: each CPU's spread."""
    each = ", ".join(f"±{s.cv_percent:.1f}% on CPU {s.cpu}" for s in speeds)
    bin_ms = round(BIN_S * 1000)
    return (
        f"CPU speed varies {each} (CV of fixed work per CPU-second, {bin_ms} ms bins): "
        "a cost figure moves with it"
    )
