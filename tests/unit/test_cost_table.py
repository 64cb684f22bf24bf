"""The table's labels for cost, capacity, placement and the diagnostic pass."""

from __future__ import annotations

from typing import Any

import pytest

from tunbench.analysis import boundby, results
from tunbench.cell import diagnose
from tunbench.report import tables

from resultdocs import doc


def load_bound(d: dict[str, Any]) -> dict[str, Any]:
    """The iperf3 client ran at a full core over the window (1..6)."""
    d["load_samples"] = {
        "iperf3-client": [{"t": t, "dt": 1.0, "cpu_pct": 99.0} for t in (2.0, 3.0, 4.0, 5.0)]
    }
    return d


def capacity_run(gbps: float, repeat: int) -> dict[str, Any]:
    d = load_bound(doc("v", gbps, repeat=repeat))
    d["metadata"]["placement"] = {"label": "split 0|1"}
    d["metadata"]["cpus"] = {"forwarder": [0], "load": [1]}
    return d


def cost_run(gbps_per_core: float, repeat: int, bps: float = 1e9, **res: Any) -> dict[str, Any]:
    """A run paced at 1 Gbit/s that used 100 / gbps_per_core % of a core (schedstat)."""
    d = doc("v", bps / 1e9, repeat=repeat, cpu=100.0 / gbps_per_core, **res)
    d["metadata"]["workload"]["offered_bps"] = 1e9
    d["metadata"]["offered"] = {
        "bps": 1e9,
        "how": "auto: 70% of the slowest compared row's capacity",
    }
    d["metadata"]["placement"] = {"label": "split 0|1"}
    d["metadata"]["cpus"] = {"forwarder": [0], "load": [1]}
    d["results"].update(bps=bps, cpu_sched_avg=100.0 / gbps_per_core, cpu_wait_avg=2.0)
    d["forwarder"] = {"directions": {"1to2": {"packets": 90_000}, "2to1": {"packets": 10_000}}}
    d["iperf3"] = {"intervals": [{"sum": {"seconds": 1.0}}] * 5}
    d["diagnose"] = {
        "syscalls_per_packet": 2.5,
        "cswitches_per_packet": 0.25,
        "migrations_per_packet": 0.0,
        "note": diagnose.NO_PMU,
    }
    return d


def test_capacity_bound_by_the_load_says_so_in_its_figure() -> None:
    recs = [results.flat(capacity_run(g, r)) for r, g in enumerate((12.2, 12.3, 12.25))]
    assert all(r["capacity_limited"] is True and r["capacity_bound"] == "load" for r in recs)
    text = tables.markdown(recs)
    assert "≥ 12.25, load-bound" in text
    assert "note: v: its capacity is bound by the load generator, not the forwarder" in text
    assert "split 0|1" in text.splitlines()[0 + 2]  # the Placement column of the row
    free = capacity_run(12.0, 1)
    free["load_samples"] = {}
    half = [results.flat(capacity_run(12.2, 0)), results.flat(free)]
    assert "load-bound" not in tables.markdown(half)  # 1 of 2: no majority


def test_a_cost_row_shows_gbps_per_core_and_its_columns() -> None:
    recs = [results.flat(cost_run(g, r)) for r, g in enumerate((4.0, 4.1, 3.9))]
    recs.append(results.flat(cost_run(4.0, 3, bps=0.9e9)))  # 10 % short
    df = tables.grouped(recs)
    row = df.iloc[0]
    assert row["primary_metric"] == "gbps_per_core" and row["short"] == 1
    assert row["primary_mean"] == pytest.approx(4.0)  # the short run is left out
    # 25 % of a core = 250,000 µs/s over 125 MB/s = 2000 µs/MB; over 20,000 frames/s 12.5 µs
    assert row["µs/MB"] == pytest.approx(2000.0) and row["µs/pkt"] == pytest.approx(12.5)
    assert row["runq %"] == pytest.approx(100 * 2.0 / 27.0)
    text = tables.markdown(recs)
    header = text.splitlines()[0]
    for col in ("Placement", "Gbps/core", "µs/MB", "µs/pkt", "runq %", "sys/pkt", "cs/pkt"):
        assert col in header, col
    assert "instr/pkt" not in header  # no hardware counters: no such column
    assert "4.00 ± " in text and "Gbps/core" in text
    assert "4 (1 short)" in text
    assert "carried less than 97% of the offered load" in text
    assert "ran at an offered 1 Gbit/s (auto: 70% of the slowest" in text
    assert f"note: diagnostic pass: {diagnose.NO_PMU}" in text
    assert "2000.0" in text and "12.50" in text and "2.50" in text


def test_bound_by_explains_with_the_per_packet_figures() -> None:
    bound = boundby.from_doc(cost_run(4.0, 0))
    assert bound is not None
    line = bound.explain()
    assert "per packet: 2.50 syscalls, 0.25 context switches, 0.00 migrations" in line
    assert "forwarder waited 7% of its runnable time" in line


def test_pinned_load_cpus_that_ran_out_bind_the_load() -> None:
    d = doc("v", 5.0)
    d["metadata"]["cpus"] = {"forwarder": [0], "load": [1]}
    d["samples"] = [
        {"t": t, "dt": 1.0, "cpu_pct": 60.0, "system_busy_pct": 75.0, "cpu_busy": [50.0, 98.0]}
        for t in (2.0, 3.0, 4.0)
    ]
    bound = boundby.from_doc(d)
    assert bound is not None and bound.verdict == "load generator saturated (its CPUs)"
    assert bound.numbers["load_cpus_busy_pct"] == pytest.approx(98.0)
    two_threads = dict(
        d, samples=[{**s, "cpu_pct": 97.0, "cpu_busy": [97.0, 50.0]} for s in d["samples"]]
    )
    two_threads["results"] = {**d["results"], "cpu_threads": {"1to2": 60.0, "2to1": 37.0}}
    bound = boundby.from_doc(two_threads)
    assert bound is not None and bound.verdict == "forwarder saturated (its CPU)"


def test_perf_stat_output_per_packet() -> None:
    text = (
        "# started on Tue\n\n"
        "200000,,raw_syscalls:sys_enter,3000000000,100.00,,\n"
        "15000,,context-switches,3000000000,100.00,0.005,K/sec\n"
        "12,,cpu-migrations,3000000000,100.00,0.004,/sec\n"
        "2100.5,msec,task-clock,2100500000,100.00,0.700,CPUs utilized\n"
        "<not supported>,,instructions,0,100.00,,\n"
    )
    counts = diagnose.parse(text)
    assert counts["raw_syscalls:sys_enter"] == 200_000 and counts["instructions"] is None
    per = diagnose.per_packet(counts, 100_000)
    assert per["syscalls_per_packet"] == pytest.approx(2.0)
    assert per["cswitches_per_packet"] == pytest.approx(0.15)
    assert per["migrations_per_packet"] == pytest.approx(0.00012)
    assert per["instructions_per_packet"] is None
    assert diagnose.per_packet(counts, None)["syscalls_per_packet"] is None
    argv = diagnose.argv([7, 8], diagnose.Path("/x.csv"), "perf", hw=False)
    assert argv[-2:] == ["-p", "7,8"] and "instructions" not in argv[argv.index("-e") + 1]
