"""A short real matrix with baselines, profiling and repeats; the workload options."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tunbench.analysis import results

from helpers import matrix_argv, run_json, tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]


def test_short_matrix_interleaves_profiles_and_records(tmp_path: Path) -> None:
    res, fg = tmp_path / "results", tmp_path / "flamegraph"
    argv = matrix_argv(
        "kernel-veth",
        "kernel-router",
        "sync-gso",
        results=res,
        flamegraphs=fg,
        repeat=2,
        diagnose=True,
    )
    proc = tunbench(*argv, "--duration", "1", timeout=170)
    assert proc.returncode == 0, proc.stderr
    docs = sorted(
        results.load_dir(res), key=lambda d: (d["matrix"]["repeat"], d["matrix"]["order"])
    )
    # every round runs every cell once, in its own shuffled order; the seed is recorded
    for r in (0, 1):
        this = [d for d in docs if d["matrix"]["repeat"] == r]
        assert [d["matrix"]["order"] for d in this] == [0, 1, 2]
        assert sorted(d["cell"]["variant"] for d in this) == [
            "kernel-router",
            "kernel-veth",
            "sync-gso",
        ]
    assert len({d["matrix"]["id"] for d in docs}) == 1
    assert len({d["matrix"]["seed"] for d in docs}) == 1
    assert all(d["results"]["background_cpu_pct"] is not None for d in docs)
    assert all(d["status"] == "ok" and d["results"]["gbps"] > 0.1 for d in docs)
    # one profiling pass for the Python variant only, its SVG and its throughput kept;
    # perf on the same process beside py-spy when perf is installed
    perf = shutil.which("perf") is not None
    also = ["sync-gso-perf.folded", "sync-gso-perf.svg"] if perf else []
    assert sorted(p.name for p in fg.iterdir()) == [*also, "sync-gso.svg"]
    assert "<svg" in (fg / "sync-gso.svg").read_text()[:2000]
    prof = next(d for d in docs if d["cell"]["variant"] == "sync-gso")["profile"]
    assert prof["svg"] == str(fg / "sync-gso.svg") and prof["gbps"] > 0
    if perf:
        assert prof["perf_svg"] == str(fg / "sync-gso-perf.svg")
        assert "tun_chr_write_iter" in (fg / "sync-gso-perf.svg").read_text()  # the kernel's part
    assert "profile" not in next(d for d in docs if d["cell"]["variant"] == "kernel-veth")
    # one diagnostic pass (perf stat), its per-packet counts in every sync-gso run
    if perf:
        diag = next(d for d in docs if d["cell"]["variant"] == "sync-gso")["diagnose"]
        assert diag["error"] is None and diag["packets"] > 0, diag
        assert 0.5 < diag["syscalls_per_packet"] < 50, diag  # a read and a write, and some
    # progress lines on a non-terminal
    assert "[1/8] profile sync-gso" in proc.stderr and "[8/8]" in proc.stderr
    table = proc.stdout
    for name in ("kernel-veth", "kernel-router", "sync-gso"):
        assert name in table


def test_native_forwarder_is_profiled_with_perf(tmp_path: Path) -> None:
    if shutil.which("perf") is None:
        why = "needs perf (Debian linux-perf; bootstrap installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)
    res, fg = tmp_path / "results", tmp_path / "flamegraph"
    proc = tunbench(*matrix_argv("peer-socat", results=res, flamegraphs=fg), timeout=170)
    assert proc.returncode == 0, proc.stderr
    (doc,) = results.load_dir(res)
    prof = doc["profile"]
    assert prof["error"] is None and prof["gbps"] > 0.05
    svg = (fg / "peer-socat.svg").read_text()
    assert prof["svg"] == str(fg / "peer-socat.svg") and svg.startswith("<svg")
    # kernel frames of the TUN write path, as perf saw them in socat
    assert "tun_chr_write_iter" in svg
    folded = (fg / "peer-socat.folded").read_text().splitlines()
    assert folded and all(line.startswith("socat;") for line in folded)


def test_udp_workload_reports_loss_and_packet_rate(tmp_path: Path) -> None:
    rec = run_json("sync-normal", tmp_path, "--udp", "--bandwidth", "200000000")
    assert rec["lost_percent"] is not None and rec["lost_percent"] < 50
    doc = results.load(Path(rec["result_file"]))
    assert doc["results"]["pps"] > 1000
    assert 0.05 < rec["gbps"] < 0.3  # about the 200 Mbit/s asked for
    assert doc["metadata"]["workload"]["udp"] is True


def test_udp_throughput_is_what_arrived_not_what_was_sent(tmp_path: Path) -> None:
    # Unlimited UDP overruns a Python forwarder: much is lost, and the row must show it.
    rec = run_json("sync-normal", tmp_path, "--udp")
    doc = results.load(Path(rec["result_file"]))
    r = doc["results"]
    assert r["lost_percent"] > 5, "expected an unlimited UDP sender to lose datagrams"
    assert r["bps"] == doc["iperf3"]["end"]["sum_received"]["bits_per_second"]
    assert r["sent_bps"] == doc["iperf3"]["end"]["sum_sent"]["bits_per_second"]
    assert r["bps"] < r["sent_bps"]
    got, sent = doc["iperf3"]["end"]["sum_received"], doc["iperf3"]["end"]["sum_sent"]
    # loss from bytes (iperf3's own lost counter also counts the --omit second)
    assert r["lost_percent"] == pytest.approx(100 * (1 - got["bytes"] / sent["bytes"]))
    blksize = doc["iperf3"]["start"]["test_start"]["blksize"]
    assert r["udp_packets"] == got["bytes"] // blksize  # datagrams that arrived
    assert r["pps"] == pytest.approx(r["udp_packets"] / got["seconds"])


def test_latency_under_load_and_reverse_parallel(tmp_path: Path) -> None:
    rec = run_json("sync-gso", tmp_path, "--latency", "--reverse", "--parallel", "2")
    doc = results.load(Path(rec["result_file"]))
    r = doc["results"]
    assert r["rtt_p50_ms"] is not None and 0 < r["rtt_p50_ms"] <= r["rtt_p99_ms"]
    assert r["ping_loss"] is not None and r["ping_loss"] < 0.5
    assert doc["metadata"]["workload"]["reverse"] is True
    assert len(doc["iperf3"]["start"]["connected"]) == 2
    # reverse: the data flows b -> a, so the forwarder's 2to1 direction carries it
    dirs = doc["forwarder"]["directions"]
    assert dirs["2to1"]["bytes"] > dirs["1to2"]["bytes"]


def test_cpu_pinning_is_recorded(tmp_path: Path) -> None:
    rec = run_json("sync-normal", tmp_path, "--cpus", "0:1")
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["cpus"] == {"forwarder": [0], "load": [1], "harness": [1]}
    assert rec["samples"] > 0  # the sampler ran, on the harness's core
    assert rec["cpu_max"] <= 110  # one core, sampling jitter aside
