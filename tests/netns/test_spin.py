"""The positive control of the verdicts (issue 19): a forwarder given a known extra cost
per packet is called slower, and the harness sees at least that cost.

The knob (``--spin-ns`` in a spec, ``TUNBENCH_SPIN_NS`` in tunbench's environment)
busy-waits that many ns in C per frame written and records what it really spun and what
its own call costs (forwarders.counters), so the extra CPU is known independently of the
harness's schedstat accounting.

The load is UDP at a fixed offered rate: every run carries the same frames, one
direction, so the knob changes nothing but the CPU per frame (with TCP a slower
forwarder also gets twice the ACKs to carry: 24k -> 46k per run here). Measured here
(sync-normal, UDP at 300 Mbit/s, 25.5 kpps, the diagnostic pass alongside): 3.59 ->
6.03 us per packet for a knob that costs 1.27 us on its own, syscalls (2.00) and
context switches (0.04) per packet unchanged. So the forwarder pays about twice what
the knob spins, and a spin of N ns is no calibrated +N ns: the test asks for the
change to be at least the knob's own share and at most three times it.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from forwarders.counters import SPIN_NS_ENV
from tunbench.analysis import results
from tunbench.plan import paired

from helpers import matrix_argv, run_json, tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

OFFERED = ("--udp", "--offered", "300M", "--placement", "split")
SPIN = 1000  # ns per frame written


def knob_ns(doc: dict) -> float:
    """The knob's true extra time per frame in a result: what it spun plus its call."""
    extra = doc["forwarder"]["extra"]
    return float(extra["spun_ns_per_frame"] + extra["spin_overhead_ns"])


def test_the_knob_reaches_the_forwarder_from_the_environment(tmp_path: Path) -> None:
    rec = run_json("sync-normal", tmp_path, env={SPIN_NS_ENV: "700"})
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["spin_ns"] == 700
    extra = doc["forwarder"]["extra"]
    assert extra["spin_ns"] == 700 and extra["spin_engine"] == "native", extra
    assert 700 <= extra["spun_ns_per_frame"] < 1000, extra  # in C: exact to a clock read
    assert 0 < extra["spin_overhead_ns"] < 1000, extra


def test_a_known_extra_cost_per_frame_is_called_slower_and_seen_whole(tmp_path: Path) -> None:
    a, b = "sync-normal", f"sync-normal --spin-ns {SPIN}"
    res = tmp_path / "ab"
    argv = matrix_argv(a, b, results=res, flamegraphs=tmp_path / "fg", repeat=5)
    argv += ["--duration", "1", "--no-profile", "-q", "--capacity-repeat", "0", *OFFERED]
    proc = tunbench(*argv, timeout=170)
    assert proc.returncode == 0, proc.stderr
    docs = results.load_dir(res)
    plain = [results.flat(d) for d in docs if d["cell"]["spec"] == a]
    spun = [d for d in docs if d["cell"]["spec"] == b]
    assert len(plain) == len(spun) == 5
    assert not any(results.flat(d)["offered_short"] for d in spun)  # all carried the load
    cpu_a = statistics.median(r["cost_cpu_pct"] for r in plain) / 100  # cores
    knob = statistics.median(  # cores the knob itself took in B's runs
        knob_ns(d) * 1e-9 * results.flat(d)["packets_per_s"] for d in spun
    )
    share_pct = -100 * knob / (cpu_a + knob)  # Gbit/s per core if only the knob's CPU adds
    assert -50 < share_pct < -10, (cpu_a, knob)

    cmp = tunbench("compare", "--a", a, "--b", b, str(res), "--format", "json")
    assert cmp.returncode == 0, cmp.stderr
    (row,) = json.loads(cmp.stdout)
    assert row["metric"] == "gbps_per_core" and row["rounds"] == 5, row
    assert row["verdict"] == "slower", row
    # in CPU per byte (the inverse of the figure): at least 0.8 and at most 3 times the
    # knob's own share (measured: ~2 times)
    seen = 1 / (1 + row["change_pct"] / 100) - 1
    own = 1 / (1 + share_pct / 100) - 1
    assert 0.8 * own <= seen <= 3 * own, (row, share_pct)


QUOTA = 50.0  # % of one CPU: a change no noise on this machine can hide or fake


def test_a_cpu_quota_is_the_calibrated_control_of_a_capacity_verdict(tmp_path: Path) -> None:
    """``--cpu-quota PCT`` runs the same forwarder in a ``tb-quota-`` cgroup capped at PCT
    % of one CPU: a forwarder its own CPU bounds moves PCT/100 of what it moved, whatever
    the machine's speed; the harness calls it slower by about that, its cost per byte
    does not move, and the cgroup is gone afterwards. --steer-receive keeps the endpoints'
    TCP receive off the forwarder's CPU: without it their share of that CPU moved from
    run to run, and a clean-clone CI run measured -42.6 % (-71.4 .. +14.9) in 3 rounds,
    inconclusive; with it -49.0 % and -55.2 % here. Six 1 s rounds: the same time as
    four of 2 s, with t's 5 degrees of freedom for this machine's spread of log ratios
    (a run's cost per byte moves by up to a third between minutes, on both rows)."""
    a, b = "sync-normal", f"sync-normal --cpu-quota {QUOTA:g}"
    res = tmp_path / "ab"
    argv = matrix_argv(a, b, results=res, flamegraphs=tmp_path / "fg", repeat=6)
    argv += ["--duration", "1", "--no-profile", "-q", "--window", "auto", "--steer-receive"]
    proc = tunbench(*argv, timeout=170)
    assert proc.returncode == 0, proc.stderr
    docs = results.load_dir(res)
    spun = [d for d in docs if d["cell"]["spec"] == b]
    assert len(spun) == 6
    for d in spun:
        q = d["forwarder"]["extra"]["cpu_quota"]
        assert q["percent"] == QUOTA and q["quota_us"] * 100 == QUOTA * q["period_us"], q
        assert not Path(q["cgroup"]).exists()  # removed with the cell
        cpu = results.flat(d)["cost_cpu_pct"]
        assert 0.8 * QUOTA < cpu <= QUOTA * 1.05, cpu  # schedstat sees the cap
    cmp = tunbench("compare", "--a", a, "--b", b, str(res), "--format", "json")
    assert cmp.returncode == 0, cmp.stderr
    (row,) = json.loads(cmp.stdout)
    assert row["metric"] == "gbps" and row["verdict"] == "slower", row
    # the capacity falls by what the cap takes from a core the forwarder had to itself
    cpu_a = statistics.median(
        results.flat(d)["cost_cpu_pct"] for d in docs if d["cell"]["spec"] == a
    )
    expected = 100 * (QUOTA / cpu_a - 1)
    # the change is the mean of the per-round log ratios of the files' own Gbit/s
    flat = [results.flat(d) for d in docs]
    by = {s: {paired.round_of(r): r["gbps"] for r in flat if r["spec"] == s} for s in (a, b)}
    logs = [math.log(by[b][k] / by[a][k]) for k in by[a]]
    assert len(logs) == 6
    assert row["change_pct"] == pytest.approx(100 * math.expm1(statistics.fmean(logs)), abs=0.05)
    # about what the cap takes; a throttled forwarder also pays for its cold restarts
    # (cost per byte 5-10 % below the uncapped row's here), so the change runs a few
    # points past the CPU share alone: -46.6 .. -58.8 % in 13 tries against -48.5 .. -49
    assert expected - 15 < row["change_pct"] < expected + 10, (row, cpu_a)
