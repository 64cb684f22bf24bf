"""Each workload beyond one stream runs through a real Python variant and gives numbers
that could have come out wrong: a few seconds of traffic each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunbench.analysis import results

from helpers import run_json

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]
SPEC = "sync-normal"


def test_rr_latency_percentiles(tmp_path: Path) -> None:
    rec = run_json(SPEC, tmp_path, "--workload", "rr", "--rr-size", "100")
    assert rec["status"] == "ok" and rec["workload"] == "rr"
    assert rec["transactions_per_s"] > 0
    p50, p90, p99 = (rec[f"latency_p{q}_us"] for q in (50, 90, 99))
    assert 0 < p50 <= p90 <= p99
    # one transaction at a time: each takes at least the median's share of a second
    assert rec["transactions_per_s"] < 1e6 / p50 * 1.5
    assert rec["gbps"] is None and rec["cpu_avg"] > 0
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["workload"]["rr_size"] == 100
    assert doc["workload_detail"]["transactions"] > 0


def test_crr_connections(tmp_path: Path) -> None:
    rec = run_json(SPEC, tmp_path, "--workload", "crr")
    assert rec["status"] == "ok" and rec["connections_per_s"] > 0
    detail = results.load(Path(rec["result_file"]))["workload_detail"]
    assert detail["connections"] > detail["errors"]
    assert detail["connections_per_s"] == pytest.approx(rec["connections_per_s"])


# Loss counted as none in the zero-loss test. Not the default 0.1 %: on this VM the
# hypervisor's steal stalls the Python forwarder for 10-20 ms now and then, more than its
# TUN queue (500 packets) holds at 300-400 kpps, so a 1 s trial at a rate the search found
# clean can lose 1-2 % at that queue (seen: 0.5-2.2 % in confirmations, counted as the
# trial's queue_drops). The bound must also separate the rate found from twice it (seen:
# 27-30 % lost there, the sender then offering ~430 kpps).
MAX_LOSS = 2.0


def test_zero_loss_rate_holds_and_twice_it_does_not(tmp_path: Path) -> None:
    rec = run_json(
        SPEC, tmp_path, "--workload", "zero-loss", "--pkt-size", "256", "--duration", "1",
        "--omit", "0", "--max-loss", str(MAX_LOSS),
    )  # fmt: skip
    assert rec["status"] == "ok" and rec["zero_loss_pps"] > 0
    doc = results.load(Path(rec["result_file"]))
    r, steps = doc["results"], doc["workload_detail"]["steps"]
    assert r["zero_loss_loss_percent"] <= MAX_LOSS
    assert r["zero_loss_gbps"] == pytest.approx(rec["zero_loss_pps"] * 256 * 8 / 1e9)
    confirm = [s for s in steps if s["phase"] == "confirm" and s["passed"]]
    assert confirm and confirm[-1]["loss_percent"] <= MAX_LOSS
    assert all(s["queue_drops"] is not None and s["queue_drops"] >= 0 for s in steps)
    if r["zero_loss_hit_upper"]:
        pytest.skip("the sender, not the forwarder, was the limit: nothing above to lose")
    above = [s for s in steps if s["phase"] == "above"][-1]  # a recheck adds one
    assert not r["zero_loss_unsettled"]
    assert above["rate_pps"] == pytest.approx(2 * confirm[-1]["rate_pps"])
    assert above["loss_percent"] > MAX_LOSS, steps


def test_bidir_both_directions(tmp_path: Path) -> None:
    rec = run_json(SPEC, tmp_path, "--bidir")
    assert rec["status"] == "ok"
    assert rec["gbps_fwd"] > 0 and rec["gbps_rev"] > 0
    assert rec["gbps"] == pytest.approx(rec["gbps_fwd"] + rec["gbps_rev"])
    fwd = results.load(Path(rec["result_file"]))["forwarder"]["directions"]
    assert fwd["1to2"]["bytes"] > 1e6 and fwd["2to1"]["bytes"] > 1e6  # data both ways


def test_per_stream_pairs_are_summed(tmp_path: Path) -> None:
    """--iperf-procs per-stream: one iperf3 pair per stream, each on its own port, the row
    the sum of their receiver totals, and every pair carried data."""
    rec = run_json(
        "sync-gso --thread 2 --multiqueue", tmp_path,
        "--parallel", "2", "--iperf-procs", "per-stream",
    )  # fmt: skip
    assert rec["status"] == "ok"
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["workload"]["iperf_procs"] == "per-stream"
    pairs = [doc["iperf3"], *doc["iperf3"]["tunbench_pairs"]]
    assert len(pairs) == 2
    ports = {p["start"]["connected"][0]["remote_port"] for p in pairs}
    assert len(ports) == 2, ports  # two servers, not two streams of one
    each = [p["end"]["sum_received"]["bits_per_second"] / 1e9 for p in pairs]
    assert min(each) > 0.01, each
    assert rec["gbps"] == pytest.approx(sum(each))
