"""Sample a process tree's CPU and memory with psutil, as interval deltas.

``ps -o %cpu`` is CPU time over the whole lifetime and under-reports steady-state load
(KERNEL-NOTES, methodology pitfall). Here every sample is the CPU time the forwarder (all
its threads, and any children) used since the previous sample divided by the wall time
between them, in percent of one core, split into user and system time and per thread.
System time includes the receiving network stack that runs inside the forwarder's
``write()`` to a TUN device (the packet is injected and routed in the writer's context).
Whole-system busy comes from ``psutil.cpu_percent`` (its accounting does not count guest
time twice). Summaries use only the samples inside the measured window.

The scheduler's own accounting is read beside psutil's: every thread's
``/proc/PID/task/TID/schedstat`` (:mod:`tunbench.system.schedstat`: nanoseconds on a CPU
and waiting on a run queue), as ``sched_cpu_pct`` and ``sched_wait_pct`` per sample. That
is what the cost figures are made of; psutil's tick-based ``cpu_pct`` stays as the
cross-check and as what the CPU columns have always shown. Each sample also has every
CPU's busy share (``cpu_busy``), for a run whose processes are pinned.

Cost: the psutil Process objects are kept from tick to tick; the process tree is
re-discovered once a second, not on every tick (finding children means reading every
process on the host). The sampler thread measures its own CPU time (``own_cpu_pct``).
:func:`background_cpu` measures the machine before traffic starts.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tunbench.system.schedstat import Tracker

DEFAULT_INTERVAL = 0.1
# Per-process CPU time comes in clock ticks (10 ms), so one 100 ms sample is +-10 %: a
# single-threaded process can seem to use 110 % of a core. The maximum is therefore taken
# over windows of at least this long (+-1 %).
PEAK_WINDOW_S = 1.0
CHILD_SCAN_S = 1.0  # how often the process tree is re-discovered


@dataclass(frozen=True)
class Sample:
    """One interval: ends at ``t`` (``time.monotonic()``), lasted ``dt`` seconds."""

    t: float
    dt: float
    cpu_pct: float  # percent of one core used by the process tree in this interval
    rss_bytes: int
    system_busy_pct: float  # percent of all cores busy, whole machine
    threads: int
    cpu_user_pct: float | None = None  # cpu_pct = cpu_user_pct + cpu_sys_pct
    cpu_sys_pct: float | None = None
    thread_pct: dict[str, float] = field(default_factory=dict)  # per thread, % of one core
    # the scheduler's accounting of the same tree (schedstat), % of one core: on a CPU,
    # and runnable but waiting on a run queue; None where no thread could be read
    sched_cpu_pct: float | None = None
    sched_wait_pct: float | None = None
    cpu_busy: list[float] = field(default_factory=list)  # each CPU's busy %, by number


@dataclass(frozen=True)
class Summary:
    """Averages and maxima over the samples inside a window; None without samples."""

    n: int
    span: float  # seconds the samples inside the window cover
    cpu_avg: float | None
    cpu_max: float | None
    mem_avg_bytes: float | None
    mem_max_bytes: float | None
    system_busy_avg: float | None
    cpu_user_avg: float | None = None
    cpu_sys_avg: float | None = None
    threads: dict[str, float] = field(default_factory=dict)  # thread -> avg % of one core
    sched_cpu_avg: float | None = None  # schedstat: on a CPU, % of one core
    sched_wait_avg: float | None = None  # schedstat: waiting on a run queue, % of one core
    cpu_busy_avg: list[float] = field(default_factory=list)  # each CPU's busy %


def online_cpus() -> int:
    """CPUs online now (``/sys/devices/system/cpu/online`` as the scheduler sees it)."""
    try:
        return max(1, os.sysconf("SC_NPROCESSORS_ONLN"))
    except (OSError, ValueError):
        return os.cpu_count() or 1


def background_cpu(seconds: float = 1.0, watch: Callable[[], None] | None = None) -> float:
    """Whole-machine busy over the next ``seconds`` (blocking), in % of one core.

    ``watch`` is called every 0.1 s meanwhile (the session checks its forwarder and
    pending signals there, so a crash is noticed at once).
    """
    psutil.cpu_percent(interval=None)  # starts this thread's count
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if watch is not None:
            watch()
        time.sleep(min(0.1, left))
    return psutil.cpu_percent(interval=None) * online_cpus()  # share of all -> of one core


@dataclass(frozen=True)
class Background:
    """What the machine did before the traffic started."""

    cpu_pct: float  # the last check, % of one core
    checks: list[float]  # every check, in order
    noisy: bool  # still above the limit when the wait ran out


def quiet_check(
    limit: float, wait: float, seconds: float = 1.0, watch: Callable[[], None] | None = None
) -> Background:
    """Measure background CPU for ``seconds``; while above ``limit`` (% of one core)
    measure again, for at most ``wait`` seconds more; noisy if it never got quiet."""
    checks = [background_cpu(seconds, watch)]
    deadline = time.monotonic() + wait
    while checks[-1] > limit and time.monotonic() + seconds <= deadline + 1e-3:
        checks.append(background_cpu(seconds, watch))
    return Background(checks[-1], checks, checks[-1] > limit)


class _Proc:
    """One process of the tree: its psutil object and the CPU totals last seen."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.user = 0.0
        self.system = 0.0
        self.gone = False
        try:
            self.comm = proc.name()
        except psutil.Error:
            self.comm = ""


class Sampler:
    """A thread sampling ``pid`` and its children every ``interval`` seconds until stopped.

    ``pid=None`` (baselines) samples only whole-system busy. ``include_root=False`` leaves
    ``pid`` itself out (a peer launcher: a Python process blocked in select, whose ~35 MB
    would swamp its daemons' memory). Processes seen once in the tree stay counted after
    their parent exits (a daemon whose launcher died is still the forwarder).
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
        self._procs: dict[int, _Proc] = {}
        self._thread_cpu: dict[int, float] = {}  # tid -> user + system seconds last seen
        self._thread_key: dict[int, str] = {}  # tid -> name or tid, as reported
        self._last_scan = -float("inf")
        self.error: str | None = None
        self._own = (0.0, 0.0)  # (thread CPU seconds, wall seconds) of the sampler itself
        self._sched = Tracker()

    @property
    def own_cpu_pct(self) -> float | None:
        """The sampler thread's own CPU use while it ran, % of one core."""
        used, wall = self._own
        return 100.0 * used / wall if wall > 0 else None

    def _scan(self, now: float) -> None:
        """Find the tree's processes (a full process-table walk: only once a second)."""
        if self.pid is None or now - self._last_scan < CHILD_SCAN_S:
            return
        self._last_scan = now
        if self.pid not in self._procs:
            self._procs[self.pid] = _Proc(psutil.Process(self.pid))
        try:
            children = self._procs[self.pid].proc.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            if child.pid not in self._procs:
                self._procs[child.pid] = _Proc(child)

    def _key(self, p: _Proc, tid: int) -> str:
        """A thread's name where it has its own (not the process's), else its tid."""
        key = self._thread_key.get(tid)
        if key is None:
            try:
                name = Path(f"/proc/{p.proc.pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                name = ""
            key = name if name and name != p.comm else str(tid)
            if key in self._thread_key.values():
                key = f"{key}/{tid}"
            self._thread_key[tid] = key
        return key

    def _tree(self) -> tuple[float, float, int, int, dict[str, float]]:
        """CPU user and system seconds of the tree so far, RSS, threads, per-thread CPU
        seconds used since the previous call; the schedstat totals are updated too."""
        rss = threads = 0
        per_thread: dict[str, float] = {}
        for p in self._procs.values():
            if p.gone or (p.proc.pid == self.pid and not self.include_root):
                continue  # exited: its last totals still count
            try:
                with p.proc.oneshot():
                    t = p.proc.cpu_times()
                    mem = p.proc.memory_info().rss
                    tasks = p.proc.threads()
            except psutil.Error:
                p.gone = True
                continue
            self._sched.update(p.proc.pid, [task.id for task in tasks])
            p.user, p.system = t.user, t.system
            rss += mem
            threads += len(tasks)
            for task in tasks:
                used = task.user_time + task.system_time
                before = self._thread_cpu.get(task.id)
                self._thread_cpu[task.id] = used
                if before is not None:
                    per_thread[self._key(p, task.id)] = max(0.0, used - before)
        user = sum(p.user for p in self._procs.values())
        system = sum(p.system for p in self._procs.values())
        return user, system, rss, threads, per_thread

    def _run(self) -> None:
        own0, wall0 = time.thread_time(), time.monotonic()
        try:
            psutil.cpu_percent(interval=None)  # starts this thread's system-wide count
            psutil.cpu_percent(interval=None, percpu=True)
            self._scan(wall0)
            prev_user, prev_sys, _, _, _ = self._tree()
            prev_run, prev_wait = self._sched.run_ns, self._sched.wait_ns
            prev_t = time.monotonic()
            while not self._stop.wait(self.interval):
                now = time.monotonic()
                self._scan(now)
                user, system, rss, threads, per_thread = self._tree()
                run, wait = self._sched.run_ns, self._sched.wait_ns
                busy = psutil.cpu_percent(interval=None)
                per_cpu = psutil.cpu_percent(interval=None, percpu=True)
                now = time.monotonic()
                dt = now - prev_t
                if dt > 0:
                    u = 100.0 * (user - prev_user) / dt
                    k = 100.0 * (system - prev_sys) / dt
                    seen = bool(self._sched.last)
                    self.samples.append(
                        Sample(
                            t=now,
                            dt=dt,
                            cpu_pct=u + k,
                            rss_bytes=rss,
                            system_busy_pct=busy,
                            threads=threads,
                            cpu_user_pct=u,
                            cpu_sys_pct=k,
                            thread_pct={n: 100.0 * v / dt for n, v in per_thread.items()},
                            sched_cpu_pct=_pct(run - prev_run, dt) if seen else None,
                            sched_wait_pct=_pct(wait - prev_wait, dt) if seen else None,
                            cpu_busy=list(per_cpu),
                        )
                    )
                prev_user, prev_sys, prev_t = user, system, now
                prev_run, prev_wait = run, wait
                self._own = (time.thread_time() - own0, time.monotonic() - wall0)
        except psutil.NoSuchProcess:
            return
        except Exception as exc:  # recorded in the result, never silently lost
            self.error = repr(exc)
        finally:
            self._own = (time.thread_time() - own0, time.monotonic() - wall0)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


def _pct(ns: int, dt: float) -> float:
    """Nanoseconds of CPU over ``dt`` seconds of wall time, in % of one core (never below
    0: a thread id reused by a new thread can make a total step back)."""
    return max(0.0, 100.0 * ns / 1e9 / dt)


def _avg(inside: list[Sample], span: float, value: Any) -> float | None:
    values = [value(s) for s in inside]
    if any(v is None for v in values):
        return None
    return float(sum(v * s.dt for v, s in zip(values, inside, strict=True)) / span)


def summarize(samples: list[Sample], start: float, end: float, process: bool = True) -> Summary:
    """Summarise the samples whose whole interval lies inside ``[start, end]``.

    Averages are weighted by each interval's length (time-weighted), so a late sample does
    not count more than its share. Without a sample inside, every figure is None: nothing
    was measured, which is not the same as 0 %. ``process=False`` (a kernel baseline, no
    forwarder process) leaves the process figures None too.
    """
    inside = [s for s in samples if s.t - s.dt >= start - 1e-3 and s.t <= end + 1e-3]
    if not inside:
        return Summary(0, 0.0, None, None, None, None, None)
    span = sum(s.dt for s in inside)
    busy = _avg(inside, span, lambda s: s.system_busy_pct)
    if not process:
        return Summary(len(inside), span, None, None, None, None, busy)
    names = sorted({n for s in inside for n in s.thread_pct})
    ncpu = min((len(s.cpu_busy) for s in inside), default=0)
    return Summary(
        n=len(inside),
        span=span,
        cpu_avg=_avg(inside, span, lambda s: s.cpu_pct),
        cpu_max=peak_cpu(inside),
        mem_avg_bytes=_avg(inside, span, lambda s: s.rss_bytes),
        mem_max_bytes=float(max(s.rss_bytes for s in inside)),
        system_busy_avg=busy,
        cpu_user_avg=_avg(inside, span, lambda s: s.cpu_user_pct),
        cpu_sys_avg=_avg(inside, span, lambda s: s.cpu_sys_pct),
        threads={n: sum(s.thread_pct.get(n, 0.0) * s.dt for s in inside) / span for n in names},
        sched_cpu_avg=_avg(inside, span, lambda s: s.sched_cpu_pct),
        sched_wait_avg=_avg(inside, span, lambda s: s.sched_wait_pct),
        cpu_busy_avg=[sum(s.cpu_busy[c] * s.dt for s in inside) / span for c in range(ncpu)],
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
