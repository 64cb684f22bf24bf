from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tunbench.system.procs import Child, spawn, stop, wait_until
from tunbench.system.sampler import Sample, Sampler, peak_cpu, summarize


def s(t: float, dt: float, cpu: float, rss: int = 1000) -> Sample:
    return Sample(t=t, dt=dt, cpu_pct=cpu, rss_bytes=rss, system_busy_pct=10.0, threads=1)


def test_summary_uses_only_the_window_and_weights_by_time() -> None:
    samples = [s(1.0, 1.0, 500.0), s(2.0, 1.0, 100.0), s(2.5, 0.5, 40.0), s(4.0, 1.5, 999.0)]
    summ = summarize(samples, start=1.0, end=3.0)
    assert summ.n == 2
    assert summ.cpu_avg == (100.0 * 1.0 + 40.0 * 0.5) / 1.5
    assert summ.cpu_max == 100.0


def test_peak_is_over_one_second_so_tick_jitter_cancels() -> None:
    # 10 Hz samples of a process at 100 % of a core, as 10 ms clock ticks make them look
    jitter = [s(1.0 + i / 10, 0.1, 110.0 if i % 2 else 90.0) for i in range(30)]
    assert max(x.cpu_pct for x in jitter) == 110.0
    summ = summarize(jitter, 0.9, 4.0)
    assert 99.0 <= summ.cpu_max <= 101.0
    # a real burst of one second still shows
    burst = jitter[:10] + [s(2.0 + i / 10, 0.1, 190.0) for i in range(1, 11)] + jitter[20:]
    assert summarize(burst, 0.9, 4.0).cpu_max > 180.0
    # longer runs count too: [100, 0, 100] at 0.6 s each peaks over all three (66.7), not
    # over any two (50); and the peak is never below the average
    uneven = [s(1.6, 0.6, 100.0), s(2.2, 0.6, 0.0), s(2.8, 0.6, 100.0)]
    assert summarize(uneven, 0.9, 3.0).cpu_max == pytest.approx(200 / 3)
    for samples in (jitter, burst, uneven):
        summ = summarize(samples, 0.0, 10.0)
        assert summ.cpu_max >= summ.cpu_avg - 1e-9
    # a window shorter than a second: its average
    assert summarize(jitter[:3], 0.9, 1.3).cpu_max == pytest.approx((90.0 + 110.0 + 90.0) / 3)


def test_peak_equals_the_maximum_over_every_run_of_a_second() -> None:
    """peak_cpu only looks at runs shorter than 2 s + the longest dt; check it against all."""

    def every_run(samples: list[Sample]) -> float:
        best = None
        for i in range(len(samples)):
            for j in range(i + 1, len(samples) + 1):
                run = samples[i:j]
                span = sum(x.dt for x in run)
                if span >= 1.0 - 1e-9:
                    avg = sum(x.cpu_pct * x.dt for x in run) / span
                    best = avg if best is None else max(best, avg)
        assert best is not None
        return best

    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(2, 30)
        samples = [s(0.0, rng.choice([0.1, 0.12, 0.6, 1.3]), rng.uniform(0, 200)) for _ in range(n)]
        if sum(x.dt for x in samples) >= 1.0:
            assert peak_cpu(samples) == pytest.approx(every_run(samples))


def test_empty_window() -> None:
    assert summarize([s(1.0, 0.1, 50.0)], 5.0, 6.0).n == 0


def test_interval_deltas_see_steady_state_not_lifetime_average() -> None:
    """Each sample is the CPU used in its own interval (ps -o %cpu is a lifetime average).

    Checked against the process's own CPU times, not against how much CPU it managed to
    get (that depends on what else the machine runs): idle, busy, then frozen (SIGSTOP).
    A lifetime average would show the busy phase smeared over the idle one and would still
    be high once the process is frozen; interval deltas show 0 there and put all the CPU
    it used in the busy intervals.
    """
    tick = 0.01  # /proc CPU times are whole clock ticks
    code = (
        "import sys, time\n"
        "print('ready', flush=True)\n"
        "time.sleep(1.0)\n"
        "print('busy', time.monotonic(), flush=True)\n"
        "while True: pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        child = psutil.Process(proc.pid)
        sampler = Sampler(proc.pid, interval=0.1).start()
        used_before = sum(child.cpu_times()[:2])  # asleep: does not change
        busy_from = float(proc.stdout.readline().split()[1])
        time.sleep(1.5)
        proc.send_signal(signal.SIGSTOP)
        # frozen from when the kernel says so, not from when the signal was sent: on a
        # busy machine the child may run on for a while before it stops
        assert wait_until(lambda: child.status() == psutil.STATUS_STOPPED, 5.0)
        frozen_at = time.monotonic()
        time.sleep(0.6)
        samples = sampler.stop()
        used = sum(child.cpu_times()[:2]) - used_before  # frozen: does not change either
        idle = [x for x in samples if x.t <= busy_from]
        frozen = [x for x in samples if x.t - x.dt >= frozen_at + 0.05]
        assert len(idle) >= 3 and len(frozen) >= 2
        # what the samples add up to is what the process used, to a tick or two
        assert sum(x.cpu_pct * x.dt for x in samples) / 100 == pytest.approx(used, abs=2 * tick)
        assert used > 10 * tick  # it did get to run
        # none of it is smeared into the intervals where it used none
        for x in idle + frozen:
            assert x.cpu_pct * x.dt / 100 <= tick + 1e-9, x
        assert max(x.rss_bytes for x in samples) > 0
        # the per-thread and user/system split of the same samples
        summ = summarize(samples, busy_from, frozen_at)
        assert summ.cpu_avg is not None and summ.cpu_user_avg is not None
        assert summ.cpu_user_avg > 0.9 * summ.cpu_avg
        assert sampler.own_cpu_pct is not None and sampler.own_cpu_pct < 10
        assert list(summ.threads) == [str(proc.pid)]  # one thread, no name of its own
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_stop_escalates_to_sigkill_and_reaps() -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, process_group=0)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    child = Child("stubborn", proc)
    ladder = ((signal.SIGINT, 0.2), (signal.SIGTERM, 0.2), (signal.SIGKILL, 5.0))
    status = stop(child, ladder)
    assert status == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL  # reaped
    proc.stdout.close()


def test_spawn_logs_output_and_stop_of_exited_child(tmp_path: object) -> None:
    from pathlib import Path

    log = Path(str(tmp_path)) / "child.log"
    child = spawn(
        "echo", [sys.executable, "-c", "import sys; print('one'); sys.exit(3)"], log_path=log
    )
    assert child.popen.wait(10) == 3
    assert stop(child) == 3
    assert child.stderr_tail() == "one"


def test_user_system_and_threads_are_time_weighted() -> None:
    a = Sample(1.0, 1.0, 60.0, 1000, 10.0, 2, 40.0, 20.0, {"rx": 50.0, "tx": 10.0})
    b = Sample(1.5, 0.5, 30.0, 1000, 10.0, 2, 30.0, 0.0, {"rx": 30.0})
    summ = summarize([a, b], 0.0, 2.0)
    assert summ.cpu_user_avg == pytest.approx((40.0 + 15.0) / 1.5)
    assert summ.cpu_sys_avg == pytest.approx(20.0 / 1.5)
    assert summ.cpu_user_avg + summ.cpu_sys_avg == pytest.approx(summ.cpu_avg)
    assert summ.threads == pytest.approx({"rx": (50.0 + 15.0) / 1.5, "tx": 10.0 / 1.5})
    assert summ.span == pytest.approx(1.5)
    baseline = summarize([a, b], 0.0, 2.0, process=False)
    assert baseline.cpu_avg is None and baseline.system_busy_avg == pytest.approx(10.0)


def test_empty_window_measures_nothing() -> None:
    summ = summarize([s(1.0, 0.1, 50.0)], 5.0, 6.0)
    assert (summ.n, summ.span, summ.cpu_avg, summ.mem_max_bytes) == (0, 0.0, None, None)


def test_quiet_check_waits_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunbench.system import sampler

    seen = iter([80.0, 40.0, 5.0])
    monkeypatch.setattr(sampler, "background_cpu", lambda seconds, watch: next(seen))
    quiet = sampler.quiet_check(limit=15.0, wait=5.0, seconds=0.0)
    assert (quiet.cpu_pct, quiet.checks, quiet.noisy) == (5.0, [80.0, 40.0, 5.0], False)

    def busy(seconds: float, watch: object) -> float:
        time.sleep(seconds)
        return 90.0

    monkeypatch.setattr(sampler, "background_cpu", busy)
    t0 = time.monotonic()
    noisy = sampler.quiet_check(limit=15.0, wait=0.25, seconds=0.1)
    assert noisy.noisy and noisy.cpu_pct == 90.0 and len(noisy.checks) in (3, 4)
    assert time.monotonic() - t0 < 1.0


def test_background_cpu_sees_a_busy_loop() -> None:
    from tunbench.system.sampler import background_cpu

    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        calls = []
        assert background_cpu(0.5, lambda: calls.append(1)) >= 50.0  # the loop alone: ~100
        assert 4 <= len(calls) <= 6  # watched every 0.1 s
    finally:
        proc.kill()
        proc.wait()
