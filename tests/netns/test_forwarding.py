"""Every registered variant and baseline forwards real iperf3 traffic through real namespaces;
every variant then delivers TCP, UDP and ICMP byte for byte through the same cell
(``run --verify``; the split paths and ``tunbench verify`` itself: test_verify)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunbench.analysis import results
from tunbench.cell.variants import BASELINES, VARIANTS
from tunio.engine import ENGINES

from engines import with_engine_marks
from helpers import host_snapshot, run_json

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


@pytest.mark.parametrize("variant", with_engine_marks(sorted(VARIANTS)))
def test_variant_forwards(variant: str, tmp_path: Path) -> None:
    rec = run_json(variant, tmp_path, "--verify")
    assert rec["status"] == "ok"
    assert rec["verify"]["ok"] is True, rec["verify"]
    assert set(rec["verify"]["checks"]) == {"ping", "stream", "stream-udp-gso", "stream-udp-large"}
    assert rec["gbps"] > 0.01
    assert rec["samples"] >= 5
    assert rec["cpu_avg"] > 0 and rec["cpu_max"] >= rec["cpu_avg"]
    assert rec["mem_max_mb"] > 1
    doc = results.load(Path(rec["result_file"]))
    assert doc["iperf3"]["end"]["sum_received"]["bytes"] > 0
    fwd = doc["forwarder"]
    assert fwd is not None, "forwarder counters missing"
    assert fwd["directions"]["1to2"]["packets"] > 0
    assert fwd["directions"]["2to1"]["packets"] > 0  # ACKs come back
    # the counters are the measured run's: read before the checks (> 5000 packets of TCP
    # alone) went through, they match what tun22 had received when the measurement ended
    written = fwd["directions"]["1to2"]["packets"] - doc["tun_packets"]["tun22"]["rx"]
    assert 0 <= written < 100, written
    assert doc["metadata"]["forwarder_command"].split()[2].startswith("forwarders.")
    if VARIANTS[variant].gso:
        assert "tso4" in fwd["offload"]["tun11"]


@pytest.mark.parametrize("baseline", sorted(BASELINES))
def test_baseline(baseline: str, tmp_path: Path) -> None:
    rec = run_json(baseline, tmp_path)
    assert rec["status"] == "ok"
    assert rec["gbps"] > 0.1
    assert rec["cpu_avg"] is None  # no forwarder process to sample
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["forwarder_command"] is None


@pytest.mark.parametrize(
    "spec", with_engine_marks([f"sync-gso --gso split --engine {e}" for e in ENGINES])
)
def test_split_coalesces_interleaved_flows_across_reads(spec: str, tmp_path: Path) -> None:
    """With four TCP streams the split path's batches hold several reads and several flows,
    and GRO still merges every flow back into super-frames (no flow is left unmerged)."""
    rec = run_json(spec, tmp_path, "--parallel", "4")
    d = results.load(Path(rec["result_file"]))["forwarder"]["directions"]["1to2"]
    assert d["batches"] > 0 and set(d["batch_sizes"]) - {"1"}, d["batch_sizes"]
    assert d["gro"]["packets_in"] == d["segments_in"] and d["gro"]["bad_csum"] == 0
    assert d["coalescing_factor"] > 10, d  # 64 KB reads of ~44 segments come back whole


def test_host_namespace_untouched(tmp_path: Path) -> None:
    before = host_snapshot()
    run_json("sync-gso --thread 2 --multiqueue", tmp_path)
    assert host_snapshot() == before
