"""Cost at an offered load: the arithmetic against hand-computed values, the shortfall rule,
the schedstat/psutil cross-check, the capacity flags and ``--offered auto``'s rate."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from tunbench.analysis import cost, primary, results
from tunbench.cell.options import CellOptions, with_offered
from tunbench.cli.common import bandwidth, offered_rate
from tunbench.load.iperf3 import ClientOptions

from resultdocs import make_doc


def test_figures_by_hand() -> None:
    # 2 Gbit/s = 250 MB/s at half a core: 4 Gbit/s per core; 500,000 CPU-µs per second
    # over 250 MB per second = 2000 µs/MB; over 100,000 frames per second = 5 µs each
    f = cost.figures(2e9, 50.0, 100_000.0, 2.05e9)
    assert f["gbps_per_core"] == pytest.approx(4.0)
    assert f["us_per_mb"] == pytest.approx(2000.0)
    assert f["us_per_packet"] == pytest.approx(5.0)
    assert f["carried_pct"] == pytest.approx(100 * 2 / 2.05) and f["offered_short"] is False


def test_a_run_short_of_its_offered_load_has_no_cost() -> None:
    f = cost.figures(1.9e9, 50.0, 100_000.0, 2e9)  # 95 %: more than 3 % short
    assert f["offered_short"] is True and f["carried_pct"] == pytest.approx(95.0)
    assert f["gbps_per_core"] is None and f["us_per_mb"] is None and f["us_per_packet"] is None
    assert cost.figures(1.95e9, 50.0, None, 2e9)["offered_short"] is False  # 97.5 %
    unpaced = cost.figures(1.9e9, 50.0)
    assert unpaced["offered_short"] is None and unpaced["gbps_per_core"] == pytest.approx(3.8)


def paced_doc(**res: Any) -> dict[str, Any]:
    d = make_doc("sync-normal", 0.99)
    d["metadata"]["workload"] = {"kind": "stream", "offered_bps": 1e9, "duration": 3}
    base = {"bps": 0.99e9, "cpu_sched_avg": 40.0, "cpu_wait_avg": 10.0, "cpu_avg": 44.0}
    d["results"].update({**base, **res})
    d["forwarder"] = {"directions": {"1to2": {"packets": 30_000}, "2to1": {"packets": 10_000}}}
    d["iperf3"] = {"intervals": [{"sum": {"seconds": 1.0}}] * 4}  # 4 s of traffic
    return d


def test_compute_takes_schedstat_and_both_directions_frames() -> None:
    out = cost.compute(paced_doc())
    assert out["cost_cpu_source"] == "schedstat" and out["cost_cpu_pct"] == 40.0
    assert out["packets_per_s"] == pytest.approx(10_000.0)  # 40,000 frames over 4 s
    assert out["gbps_per_core"] == pytest.approx(0.99 / 0.4)
    assert out["us_per_mb"] == pytest.approx(0.4e6 / (0.99e9 / 8e6))  # 3232.3
    assert out["us_per_packet"] == pytest.approx(40.0)
    assert out["runq_wait_share"] == pytest.approx(0.2)  # 10 / (40 + 10)
    assert out["cpu_check_pct"] == pytest.approx(10.0) and out["cpu_disagree"] is True
    assert out["capacity_limited"] is None  # a paced run is no capacity
    close = cost.compute(paced_doc(cpu_avg=41.0))
    assert close["cpu_check_pct"] == pytest.approx(2.5) and close["cpu_disagree"] is False
    ticks = cost.compute(paced_doc(cpu_sched_avg=None))
    assert ticks["cost_cpu_source"] == "psutil" and ticks["gbps_per_core"] == pytest.approx(
        0.99 / 0.44
    )


def test_without_counters_the_tun_devices_count_the_frames() -> None:
    d = paced_doc()
    d["forwarder"] = None
    d["tun_packets"] = {"tun11": {"rx": 12_000, "tx": 28_000}, "tun22": {"rx": 28_000, "tx": 1}}
    out = cost.compute(d)
    assert out["packets_source"] == "tun" and out["packets_per_s"] == pytest.approx(10_000.0)


def test_a_paced_row_is_judged_on_its_cost() -> None:
    rec = results.flat(paced_doc())
    assert primary.of_record(rec) is primary.COST
    assert primary.value(rec) == pytest.approx(0.99 / 0.4)
    assert primary.COST.cpu_per_record(rec) == pytest.approx(44.0 / 0.99)  # % per Gbit/s
    short = results.flat(paced_doc(bps=0.9e9))
    assert short["offered_short"] is True and primary.value(short) is None
    capacity = results.flat(make_doc("sync-normal", 2.5))
    assert primary.of_record(capacity) is primary.STREAM and primary.value(capacity) == 2.5


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        ("load generator saturated (iperf3 client)", (True, "load")),
        ("load generator saturated (its CPUs)", (True, "load")),
        ("machine saturated", (True, "machine")),
        ("forwarder thread main saturated", (False, "forwarder")),
        ("not CPU-bound", (False, "forwarder")),
        (None, (None, None)),
    ],
)
def test_capacity_flags_follow_bound_by(verdict: str | None, expected: tuple[Any, Any]) -> None:
    assert cost.capacity(verdict, paced=False) == expected
    assert cost.capacity(verdict, paced=True) == (None, None)


def test_auto_takes_a_share_of_the_slowest_rows_median() -> None:
    got = cost.choose_rate({"a": [2e9, 2.2e9, 2.1e9], "b": [1.0e9, 1.2e9], "c": []}, 0.7)
    assert got is not None
    assert got.spec == "b" and got.capacity_bps == pytest.approx(1.1e9) and got.runs == 2
    assert got.bps == 500_000_000  # 0.7 x 1.1e9 = 0.77e9, down to the ladder
    assert got.how == (
        "auto: 70% of the slowest compared row's capacity (b: median 1.1 Gbit/s of 2 runs), "
        "down to a 1-2-3-5 step"
    )
    assert got.to_json()["bps"] == got.bps and got.to_json()["mode"] == "auto"
    assert cost.choose_rate({"a": []}) is None
    ladder = [cost.ladder_rate(x) for x in (0.62e9, 1.0e9, 2.99e9, 3e9, 4.9e8, 9.99e6, 12e9)]
    assert ladder == [5e8, 1e9, 2e9, 3e9, 3e8, 5e6, 1e10]


def test_offered_rate_option() -> None:
    assert offered_rate("1.5G") == 1.5e9 and offered_rate("800M") == 8e8
    assert offered_rate("2e9") == 2e9 and offered_rate("100k") == 1e5
    assert offered_rate("AUTO") == "auto"
    for bad in ("fast", "10", "1.5T", "-1G"):
        with pytest.raises(argparse.ArgumentTypeError):
            offered_rate(bad)


def test_bandwidth_option_takes_the_same_suffixes() -> None:
    assert bandwidth("100M") == 100_000_000 and bandwidth("100000000") == 100_000_000
    assert bandwidth("1.5g") == 1_500_000_000 and bandwidth("0") == 0
    for bad in ("fast", "-1M", "1T", "auto"):
        with pytest.raises(argparse.ArgumentTypeError):
            bandwidth(bad)


def test_pacing_splits_the_rate_over_the_streams() -> None:
    opts = CellOptions(iperf=ClientOptions(parallel=4))
    paced = with_offered(opts, cost.Offered(2e9))
    assert paced.iperf.bandwidth == 500_000_000 and paced.workload.offered_bps == 2e9
    assert paced.offered is not None and paced.offered.how == "given: --offered 2G"
    back = with_offered(paced, None)
    assert back.iperf.bandwidth == 0 and back.workload.offered_bps is None
    udp = CellOptions(iperf=ClientOptions(udp=True, bandwidth=123))
    assert with_offered(udp, None) is udp  # a UDP --bandwidth is left alone


def test_auto_by_groups_paces_each_group_at_a_share_of_its_slowest_row() -> None:
    caps = {"peer": [0.3e9, 0.32e9], "py": [0.9e9], "gso": [1.0e9 * 12], "gso2": [30e9], "x": []}
    got = cost.choose_rates(caps, 0.5, span=3.0)
    assert set(got) == {"peer", "py", "gso", "gso2"}  # no capacity, no rate
    # peer's median 0.31: up to 0.93 shares its rate (py at 0.9 does), gso (12) starts the
    # next group and gso2 (30 <= 36) is in it
    assert got["peer"] is got["py"] and got["gso"] is got["gso2"]
    assert got["peer"].bps == 1e8 and got["peer"].spec == "peer"  # 0.155 down to 0.1
    assert got["gso"].bps == 5e9 and got["gso"].spec == "gso"  # 6 down to 5
    assert got["peer"].group == ("peer", "py") and got["gso"].group == ("gso", "gso2")
    assert "its group's slowest row's capacity (peer: median 0.31 Gbit/s of 2 runs)" in (
        got["peer"].how
    )
    assert got["gso"].to_json()["group"] == ["gso", "gso2"]
    assert cost.choose_rates({"x": []}) == {}
