"""Batching metrics: the forwarder's counters (reads, gso_size histogram), their flattening
into the flat record, and the table's columns ("-" where a row has no counters)."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from test_gsopath import flow_reads

from forwarders.counters import GSO_BUCKETS, Counters, Forwarder, pow2_label
from forwarders.frameio import write_frame
from forwarders.gsopath import SplitRelay
from tunbench.analysis import fwdmetrics, results
from tunbench.report import tables
from tunio.tun import TunDevice
from tunio.vnethdr import VirtioNetHdr

from resultdocs import doc, make_doc


def test_pow2_labels() -> None:
    assert [pow2_label(b) for b in range(4)] == ["0", "1", "2-3", "4-7"]
    assert pow2_label((1448).bit_length()) == "1024-2047"


def test_write_frame_counts_gso_sizes_only_on_vnet_counters() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    plain, vnet = Counters(), Counters(gso_hist=[0] * GSO_BUCKETS)
    gso = VirtioNetHdr(1, 1, 52, 1448).pack() + b"x" * 100
    nogso = VirtioNetHdr().pack() + b"y" * 40
    for frame in (gso, gso, nogso):
        assert write_frame(a.fileno(), frame, vnet)
        assert write_frame(a.fileno(), frame, plain)
    assert vnet.gso_hist[11] == 2 and vnet.gso_hist[0] == 1 and sum(vnet.gso_hist) == 3
    assert plain.gso_hist is None and plain.packets == 3
    a.close()
    b.close()


def _fake_dev(vnet: bool) -> TunDevice:
    return TunDevice(name="tun11", fds=[], vnet_hdr=vnet, flags=0)


def test_stats_derive_reads_for_relays_and_label_the_histogram(tmp_path: Path) -> None:
    fwd = Forwarder("x", argparse.Namespace(stats=None), [_fake_dev(True)])
    relay = fwd.counters("1to2")  # passthrough: what it reads it writes
    relay.packets, relay.bytes, relay.drops = 10, 650_000, 1
    assert relay.gso_hist is not None
    relay.gso_hist[11] += 9
    relay.gso_hist[0] += 1
    fwd.counters("1to2").packets = 0  # a second thread of the same direction merges in
    split = fwd.counters("2to1")
    reads = flow_reads(1, 2) + flow_reads(2, 2)
    for out in SplitRelay(1500).process(reads, split):
        split.packets += 1
        split.bytes += len(out)
    d = fwd.stats()["directions"]
    assert d["1to2"]["frames_read"] == 11 and d["1to2"]["bytes_read"] == 650_000
    assert d["1to2"]["gso_sizes"] == {"0": 1, "1024-2047": 9}
    assert "gso_hist" not in d["1to2"]
    assert d["2to1"]["frames_read"] == 4
    assert d["2to1"]["bytes_read"] == sum(map(len, reads))
    assert d["2to1"]["coalescing_factor"] == 6.0  # 12 segments, one frame per flow


def test_plain_forwarder_has_no_histogram() -> None:
    fwd = Forwarder("x", argparse.Namespace(stats=None), [_fake_dev(False)])
    fwd.counters("1to2").packets = 3
    assert "gso_sizes" not in fwd.stats()["directions"]["1to2"]


def counters_doc(**directions: dict[str, Any]) -> dict[str, Any]:
    d = doc("sync-gso", 10.0)
    d["forwarder"] = {"variant": "sync-gso", "directions": directions}
    d["iperf3"] = {"intervals": [{"sum": {"seconds": 1.0, "omitted": i == 0}} for i in range(4)]}
    return d


def test_metrics_come_from_the_data_direction() -> None:
    d = counters_doc(
        **{
            "1to2": {
                "packets": 80_000,
                "bytes": 80_000 * 60_000,
                "frames_read": 40_000,
                "bytes_read": 80_000 * 60_000,
                "coalescing_factor": 41.5,
                "gso_sizes": {"1024-2047": 79_000, "0": 1000},
            },
            "2to1": {"packets": 90_000, "bytes": 90_000 * 62},  # ACKs: more frames, fewer bytes
        }
    )
    m = fwdmetrics.compute(d)
    assert m["fwd_direction"] == "1to2"
    assert m["fwd_kpps"] == pytest.approx(20.0)  # 80k frames over 4 s, the omitted one too
    assert m["frame_bytes_written"] == pytest.approx(60_000)
    assert m["frame_bytes_read"] == pytest.approx(120_000)
    assert m["segs_per_frame"] == 41.5
    assert m["gso_sizes"] == {"1024-2047": 79_000, "0": 1000}
    rec = results.flat(d)
    assert rec["fwd_kpps"] == pytest.approx(20.0) and rec["segs_per_frame"] == 41.5


def test_without_iperf3_intervals_the_workload_gives_the_time() -> None:
    d = counters_doc(**{"1to2": {"packets": 6000, "bytes": 6000 * 1500}})
    d["iperf3"] = None
    d["metadata"]["workload"] = {"duration": 5, "omit": 1}
    assert fwdmetrics.compute(d)["fwd_kpps"] == pytest.approx(1.0)


def test_a_zero_loss_search_has_no_frame_rate() -> None:
    """Its counters hold every trial (probe, search, confirm, above), its window only the
    confirming one: a rate from the two would be inflated (it showed 497 kpps beside a
    86 kpps zero-loss rate). Frame sizes stay: they do not depend on time."""
    d = counters_doc(**{"1to2": {"packets": 6000, "bytes": 6000 * 256}})
    d["metadata"]["workload"] = {"duration": 3, "omit": 0, "kind": "zero-loss"}
    m = fwdmetrics.compute(d)
    assert m["fwd_kpps"] is None and m["frame_bytes_written"] == pytest.approx(256)


@pytest.mark.parametrize(
    "forwarder",
    [
        None,  # kernel baseline, or a forwarder that wrote nothing
        {"variant": "peer-socat", "daemon": "socat", "offload": {}},  # a peer's launcher
        {"anything": 1, "directions": "not ours"},  # an external forwarder's own {stats}
        {"directions": {"1to2": {"packets": 0, "bytes": 0}}},  # no traffic
    ],
)
def test_rows_without_counters_have_no_metrics(forwarder: Any) -> None:
    d = make_doc("kernel-veth")
    d["forwarder"] = forwarder
    m = fwdmetrics.compute(d)
    assert all(m[k] is None for k in fwdmetrics.KEYS)
    assert m["gso_sizes"] is None


def test_table_csv_and_json_show_the_columns_and_dash_without_counters() -> None:
    gso = counters_doc(
        **{
            "1to2": {
                "packets": 40_000,
                "bytes": 40_000 * 64_000,
                "frames_read": 20_000,
                "bytes_read": 40_000 * 64_000,
                "coalescing_factor": 44.0,
            }
        }
    )
    kernel = doc("kernel-veth", 20.0)
    recs = [results.flat(gso), results.flat(kernel)]
    shown = tables.formatted(tables.grouped(recs))
    assert list(shown.columns[-4:]) == [*tables.BATCH_COLUMNS, "Bound by"]
    assert shown.loc[0, "fwd kpps"] == "10.0"
    assert shown.loc[0, "frame B"] == "128000/64000"
    assert shown.loc[0, "segs/frame"] == "44.0"
    assert [shown.loc[1, c] for c in tables.BATCH_COLUMNS] == ["-", "-", "-"]
    text = tables.markdown(recs)
    assert all(c in text.splitlines()[0] for c in tables.BATCH_COLUMNS)
    csv_lines = tables.csv(recs).splitlines()
    for col in ("fwd kpps", "frame B", "frame B read", "segs/frame"):
        assert col in csv_lines[0]
    assert ",10.0,64000.0,128000.0,44.0," in csv_lines[1]
    assert ",,,,," in csv_lines[2]
    rows = json.loads(tables.json_table(recs))
    assert rows[0]["fwd kpps"] == 10.0 and rows[1]["segs/frame"] is None


def test_same_size_read_and_written_shows_one_number() -> None:
    assert tables._frame_text(1500.2, 1500.0) == "1500"
    assert tables._frame_text(float("nan"), 1500.0) == "1500"
    assert tables._frame_text(None, float("nan")) == "-"


def test_split_counts_reads_once_per_batch() -> None:
    c = Counters()
    SplitRelay(1500).split(flow_reads(3, 3), c)
    assert (c.frames_read, c.batches) == (3, 1)
