"""CPU time from the scheduler's own per-thread accounting, ``/proc/PID/task/TID/schedstat``.

Each line holds three numbers: nanoseconds the thread ran on a CPU, nanoseconds it waited
on a run queue (runnable but not running), and how many times it was put on a CPU. The
first is the scheduler's ``sum_exec_runtime``, exact to the nanosecond, where
``/proc/PID/stat``'s utime and stime (what psutil reads) are counted in 10 ms clock ticks
and only then scaled to it: over a 3 s window a thread at 5 % of a core is 15 ticks, so
tick counts alone would be +-7 %. The second is what no tick count has at all: how long a
thread wanted a CPU and did not get one.

:class:`Tracker` keeps the last value seen of every thread of a process tree, so the
tree's total only ever grows: a thread that exits keeps counting with what it had used
when it was last read (at most one sampling interval is lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class SchedStat:
    """One thread's totals since it started, in nanoseconds."""

    run_ns: int  # on a CPU
    wait_ns: int  # runnable, waiting on a run queue
    slices: int = 0  # times it was put on a CPU


def parse(text: str) -> SchedStat | None:
    """A schedstat line (``"171752 4908887 2"``); None if it is not one."""
    parts = text.split()
    if len(parts) < 2:
        return None
    try:
        nums = [int(p) for p in parts[:3]]
    except ValueError:
        return None
    return SchedStat(nums[0], nums[1], nums[2] if len(nums) > 2 else 0)


def read(pid: int, tid: int, proc: Path = PROC) -> SchedStat | None:
    """Thread ``tid`` of process ``pid``; None when it is gone (or the kernel lacks
    CONFIG_SCHED_INFO, which makes the file absent)."""
    try:
        return parse((proc / str(pid) / "task" / str(tid) / "schedstat").read_text())
    except OSError:
        return None


def tids(pid: int, proc: Path = PROC) -> list[int]:
    """The threads of process ``pid`` now; [] when it is gone."""
    try:
        return sorted(int(t.name) for t in (proc / str(pid) / "task").iterdir() if t.name.isdigit())
    except OSError:
        return []


def available(proc: Path = PROC) -> bool:
    """Whether this kernel keeps per-thread schedstat (CONFIG_SCHED_INFO)."""
    return (proc / "self" / "schedstat").exists()


class Tracker:
    """Running totals over every thread ever seen of some processes.

    :meth:`update` reads every thread of a process; :attr:`run_ns` and
    :attr:`wait_ns` are then the sums of the last values seen of every thread, exited
    ones included, so differences between two updates are what the tree did meanwhile.
    """

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self.last: dict[int, SchedStat] = {}

    def update(self, pid: int, threads: list[int] | None = None) -> None:
        """Read the threads ``threads`` of process ``pid`` (default: all it has now)."""
        for tid in tids(pid, self.proc) if threads is None else threads:
            st = read(pid, tid, self.proc)
            if st is not None:
                self.last[tid] = st

    @property
    def run_ns(self) -> int:
        return sum(s.run_ns for s in self.last.values())

    @property
    def wait_ns(self) -> int:
        return sum(s.wait_ns for s in self.last.values())
