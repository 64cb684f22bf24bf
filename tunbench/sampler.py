"""Sample a process tree's CPU and memory with psutil, as interval deltas.

``ps -o %cpu`` is CPU time over the whole lifetime and under-reports steady-state load
(KERNEL-NOTES, methodology pitfall). Here every sample is the CPU time the forwarder (all
its threads, and every process of its tree: its descendants, including those that outlive
their parent) used since the previous sample divided by the wall time
between them, in percent of one core; whole-system busy comes from the same deltas of
``psutil.cpu_times()``. Summaries use only the samples inside the measured window.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

DEFAULT_INTERVAL = 0.1
# Per-process CPU time comes in clock ticks (10 ms), so one 100 ms sample is +-10 %: a
# single-threaded process can seem to use 110 % of a core. The maximum is therefore taken
# over windows of at least this long (+-1 %).
PEAK_WINDOW_S = 1.0


@dataclass(frozen=True)
class Sample:
    """One interval: ends at ``t`` (Unix time), lasted ``dt`` seconds."""

    t: float
    dt: float
    cpu_pct: float  # percent of one core used by the process tree in this interval
    rss_bytes: int
    system_busy_pct: float  # percent of all cores busy, whole machine
    threads: int


@dataclass(frozen=True)
class Summary:
    """Averages and maxima over the samples inside a window."""

    n: int
    cpu_avg: float
    cpu_max: float
    mem_avg_bytes: float
    mem_max_bytes: float
    system_busy_avg: float


def _busy(times: Any) -> tuple[float, float]:
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total


class Sampler:
    """A thread sampling ``pid`` and its children every ``interval`` seconds until stopped.

    ``pid=None`` (baselines) samples only whole-system busy. ``include_root=False`` leaves
    ``pid`` itself out (a peer launcher: a Python process blocked in select, whose ~35 MB
    would swamp its daemons' memory).
    """

    def __init__(
        self, pid: int | None, interval: float = DEFAULT_INTERVAL, include_root: bool = True
    ) -> None:
        self.pid = pid
        self.include_root = include_root
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tb-sampler", daemon=True)
        self._procs: dict[int, psutil.Process] = {}
        self._cpu_seen: dict[int, float] = {}
        self._exited: set[int] = set()
        self.error: str | None = None

    def _tree_cpu_rss(self) -> tuple[float, int, int]:
        if self.pid is None:  # baselines: no forwarder process, system busy only
            return 0.0, 0, 0
        root = self._procs.setdefault(self.pid, psutil.Process(self.pid))
        try:
            for child in root.children(recursive=True):
                self._procs.setdefault(child.pid, child)
        except psutil.Error:
            pass
        rss = 0
        threads = 0
        # Every process seen in the tree so far, not only today's descendants: a daemon
        # whose launcher exited is no one's descendant any more, and still the forwarder.
        for proc in list(self._procs.values()):
            if proc.pid in self._exited or (proc is root and not self.include_root):
                continue
            try:
                with proc.oneshot():
                    if not proc.is_running():  # its PID now names another process
                        raise psutil.NoSuchProcess(proc.pid)
                    t = proc.cpu_times()
                    used = t.user + t.system
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
            except psutil.Error:
                self._exited.add(proc.pid)  # exited: its last total stays in the sum
                continue
            self._cpu_seen[proc.pid] = used
        cpu = sum(self._cpu_seen.values())
        return cpu, rss, threads

    def _run(self) -> None:
        try:
            prev_cpu, _, _ = self._tree_cpu_rss()
            prev_busy, prev_total = _busy(psutil.cpu_times())
            prev_t = time.time()
            while not self._stop.wait(self.interval):
                cpu, rss, threads = self._tree_cpu_rss()
                busy, total = _busy(psutil.cpu_times())
                now = time.time()
                dt = now - prev_t
                dtotal = total - prev_total
                if dt > 0:
                    self.samples.append(
                        Sample(
                            t=now,
                            dt=dt,
                            cpu_pct=100.0 * (cpu - prev_cpu) / dt,
                            rss_bytes=rss,
                            system_busy_pct=100.0 * (busy - prev_busy) / dtotal if dtotal else 0.0,
                            threads=threads,
                        )
                    )
                prev_cpu, prev_busy, prev_total, prev_t = cpu, busy, total, now
        except psutil.NoSuchProcess:
            return
        except Exception as exc:  # recorded in the result, never silently lost
            self.error = repr(exc)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


def summarize(samples: list[Sample], start: float, end: float) -> Summary:
    """Summarise the samples whose whole interval lies inside ``[start, end]``.

    The CPU average is weighted by each interval's length (time-weighted), so a late
    sample does not count more than its share.
    """
    inside = [s for s in samples if s.t - s.dt >= start - 1e-3 and s.t <= end + 1e-3]
    if not inside:
        return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    span = sum(s.dt for s in inside)
    return Summary(
        n=len(inside),
        cpu_avg=sum(s.cpu_pct * s.dt for s in inside) / span,
        cpu_max=peak_cpu(inside),
        mem_avg_bytes=sum(s.rss_bytes * s.dt for s in inside) / span,
        mem_max_bytes=float(max(s.rss_bytes for s in inside)),
        system_busy_avg=sum(s.system_busy_pct * s.dt for s in inside) / span,
    )


def peak_cpu(samples: list[Sample], window: float = PEAK_WINDOW_S) -> float:
    """Highest time-weighted CPU over any run of consecutive samples lasting >= ``window``
    (the whole list is such a run, so this is never below the average; a list shorter than
    ``window`` gives its average).

    Only runs shorter than ``2 * window + longest dt`` need looking at: a longer run splits
    at a sample boundary into two runs of >= ``window`` each, and one of the two is at least
    as busy as the whole. So the cost is linear in the number of samples.
    """
    if not samples:
        return 0.0
    used, span = [0.0], [0.0]  # prefix sums of CPU-seconds and seconds
    for s in samples:
        used.append(used[-1] + s.cpu_pct * s.dt)
        span.append(span[-1] + s.dt)
    if span[-1] < window:
        return used[-1] / span[-1] if span[-1] else 0.0
    reach = 2 * window + max(s.dt for s in samples)
    best = 0.0
    for j in range(1, len(span)):
        i = j - 1
        while i >= 0 and span[j] - span[i] < reach:
            if span[j] - span[i] >= window - 1e-9:
                best = max(best, (used[j] - used[i]) / (span[j] - span[i]))
            i -= 1
    return best


def samples_to_json(samples: list[Sample]) -> list[dict[str, Any]]:
    return [asdict(s) for s in samples]
