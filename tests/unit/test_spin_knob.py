"""The positive control: ``--spin-ns`` / ``$TUNBENCH_SPIN_NS`` busy-waits per frame written,
is chosen once per counter object (none set: the plain counters, untouched), and is
recorded in the forwarder's stats and the result metadata."""

from __future__ import annotations

import argparse
import socket
import time

import pytest

from forwarders import counters as fc
from forwarders.counters import SPIN_NS_ENV, Counters, Forwarder, busy_wait, spin_ns
from forwarders.frameio import write_frame
from tunbench.cell.record import cell_spin_ns
from tunbench.cell.variants import parse_spec
from tunbench.errors import UsageError


def _args(spin: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(spin_ns=spin, stats=None)


def test_busy_wait_reads_the_clock_until_the_time_has_passed() -> None:
    ticks = iter(range(0, 10_000, 100))  # a clock that moves 100 ns per read
    reads: list[int] = []

    def clock() -> int:
        reads.append(next(ticks))
        return reads[-1]

    assert busy_wait(450, clock) == 500  # 0, 100, ..., 500: the first read past 450
    assert len(reads) == 6
    reads.clear()
    assert busy_wait(0, clock) == 0 and len(reads) == 1  # no spin: one read, no loop


def test_busy_wait_on_the_real_clock_waits_at_least_that_long() -> None:
    start = time.perf_counter_ns()
    spun = busy_wait(200_000)
    assert spun >= 200_000
    assert time.perf_counter_ns() - start >= 200_000


def test_spin_ns_prefers_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPIN_NS_ENV, raising=False)
    assert spin_ns(_args()) == 0
    assert spin_ns(argparse.Namespace()) == 0  # a parser without the option
    monkeypatch.setenv(SPIN_NS_ENV, "250")
    assert spin_ns(_args()) == 250
    assert spin_ns(_args(0)) == 0  # the spec's --spin-ns 0 switches it off
    assert spin_ns(_args(40)) == 40
    for bad in ("-5", "1.5", "lots"):
        monkeypatch.setenv(SPIN_NS_ENV, bad)
        with pytest.raises(ValueError, match=SPIN_NS_ENV):
            spin_ns(_args())


def test_no_spin_leaves_the_plain_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPIN_NS_ENV, raising=False)
    fwd = Forwarder("t", _args(), [])
    assert type(fwd.counters("1to2")) is Counters
    assert "spin_ns" not in fwd.extra
    monkeypatch.setenv(SPIN_NS_ENV, "0")
    assert type(Forwarder("t", _args(), []).counters("1to2")) is Counters


def test_a_spin_spins_once_per_frame_written_and_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SPIN_NS_ENV, "1234")
    spins: list[int] = []
    monkeypatch.setattr(fc, "SPIN", lambda ns: spins.append(ns) or ns)  # type: ignore[func-returns-value]
    fwd = Forwarder("t", _args(), [])
    c = fwd.counters("2to1")
    assert type(c) is not Counters and isinstance(c, Counters)
    assert fwd.extra["spin_ns"] == 1234 and fwd.extra["spin_engine"] == fc.SPIN_ENGINE
    assert 0 <= fwd.extra["spin_overhead_ns"] < 10_000  # the knob's own call, per frame
    spins.clear()  # (measuring that called it with 0 ns)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        for _ in range(3):
            assert write_frame(a.fileno(), b"x" * 60, c)
    assert spins == [1234, 1234, 1234]
    assert c.packets == 3 and c.bytes == 180  # still counted as before
    extra = fwd.stats()["extra"]
    assert extra["spin_ns"] == 1234 and extra["spun_ns_per_frame"] == 1234.0


def test_the_spec_option_and_the_recorded_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPIN_NS_ENV, raising=False)
    assert cell_spin_ns(parse_spec("sync-normal")) is None
    assert cell_spin_ns(parse_spec("sync-normal --spin-ns 300")) == 300
    assert cell_spin_ns(parse_spec("async-gso --spin-ns 0")) is None
    assert cell_spin_ns(parse_spec("kernel-veth")) is None
    monkeypatch.setenv(SPIN_NS_ENV, "77")
    assert cell_spin_ns(parse_spec("sync-normal")) == 77  # what the forwarder inherits
    assert cell_spin_ns(parse_spec("sync-normal --spin-ns 5")) == 5
    with pytest.raises(UsageError, match="spin-ns"):
        parse_spec("sync-normal --spin-ns -1")
    monkeypatch.setenv(SPIN_NS_ENV, "x")
    with pytest.raises(UsageError, match=SPIN_NS_ENV):
        cell_spin_ns(parse_spec("sync-normal"))


def test_the_native_spin_spins_what_it_is_asked_and_returns_it() -> None:
    """The C busy-wait (the knob's default where the engine is built) passes at least the
    ns asked, by the process's own CPU clock too (it spins, it does not sleep)."""
    native = pytest.importorskip("tunio._native")
    assert native.spin(0) >= 0 and native.spin(-5) >= 0
    cpu0 = time.thread_time_ns()
    passed = native.spin(50_000_000)
    assert passed >= 50_000_000
    # on CPU, not asleep: a sleep would use ~0 of it. Not most of it either: on a busy
    # machine (the unit tests run one worker per CPU) other processes preempt this one,
    # 1-3 ms at a time (a 3 ms spin once got less than 2 ms of CPU); 45 ms of 50 would
    # need ~10 others queued on this CPU
    assert time.thread_time_ns() - cpu0 >= 5_000_000
    with pytest.raises(TypeError):
        native.spin("1")  # type: ignore[arg-type]
