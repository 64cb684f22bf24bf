"""The schedstat reader and the sampler's summary of it, on a /proc tree built by hand."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tunbench.system import schedstat
from tunbench.system.sampler import Sample, summarize


def fake_proc(root: Path, pid: int, threads: dict[int, str]) -> None:
    for tid, line in threads.items():
        d = root / str(pid) / "task" / str(tid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "schedstat").write_text(line)


def test_parse_reads_run_wait_and_slices() -> None:
    assert schedstat.parse("171752 4908887 2\n") == schedstat.SchedStat(171752, 4908887, 2)
    assert schedstat.parse("5 6") == schedstat.SchedStat(5, 6, 0)
    assert schedstat.parse("") is None and schedstat.parse("a b c") is None


def test_tracker_sums_threads_and_keeps_exited_ones(tmp_path: Path) -> None:
    fake_proc(tmp_path, 10, {10: "1000 50 3", 11: "2000 150 9"})
    fake_proc(tmp_path, 20, {20: "500 0 1"})
    t = schedstat.Tracker(tmp_path)
    t.update(10)
    t.update(20, [20])
    assert (t.run_ns, t.wait_ns) == (3500, 200)
    (tmp_path / "10" / "task" / "11" / "schedstat").unlink()  # thread 11 exits ...
    fake_proc(tmp_path, 10, {10: "4000 70 5"})  # ... and 10 ran 3000 ns more
    t.update(10)
    assert (t.run_ns, t.wait_ns) == (6500, 220)  # 11's last values still count
    assert schedstat.read(10, 99, tmp_path) is None and schedstat.tids(99, tmp_path) == []


def test_this_kernel_counts_a_threads_cpu_in_schedstat() -> None:
    """What the sampler relies on: the file exists here and counts this thread's CPU as
    the thread's own CPU clock does (a running thread's total is brought up to date at
    each scheduler tick, so it may lag by one: a few ms)."""
    if not schedstat.available():
        pytest.skip("kernel without CONFIG_SCHED_INFO")
    pid, tid = os.getpid(), threading.get_native_id()
    before, t0 = schedstat.read(pid, tid), time.thread_time()
    while time.thread_time() - t0 < 0.05:  # 50 ms of this thread's CPU
        pass
    after, used = schedstat.read(pid, tid), time.thread_time() - t0
    assert before is not None and after is not None
    assert (after.run_ns - before.run_ns) / 1e9 == pytest.approx(used, abs=0.015)


def _s(t: float, cpu: float, sched: float | None, wait: float | None) -> Sample:
    return Sample(
        t, 0.5, cpu, 1, 40.0, 1, sched_cpu_pct=sched, sched_wait_pct=wait, cpu_busy=[90, 20]
    )


def test_summary_averages_schedstat_like_cpu_over_the_window() -> None:
    samples = [_s(1.0, 50, 48, 2), _s(1.5, 60, 62, 4), _s(2.0, 70, 70, 6), _s(2.5, 10, 10, 0)]
    s = summarize(samples, 0.5, 2.0)  # the last sample ends outside
    assert s.n == 3
    assert s.sched_cpu_avg == pytest.approx((48 + 62 + 70) / 3)
    assert s.sched_wait_avg == pytest.approx(4.0)
    assert s.cpu_busy_avg == pytest.approx([90.0, 20.0])
    # a sample where no thread could be read leaves the average unknown, never 0
    assert summarize([_s(1.0, 50, None, None)], 0.0, 2.0).sched_cpu_avg is None
