"""The measured window from iperf3's own timeline, and what falls inside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunbench.load import iperf3
from tunbench.load.iperf3 import Iperf3Result
from tunbench.load.iperf3child import StreamWatch
from tunbench.load.ping import PingResult, parse


def interval(start: float, end: float, bps: float = 1e9, omitted: bool = False) -> dict[str, Any]:
    return {"sum": {"start": start, "end": end, "seconds": end - start, "omitted": omitted,
                    "bits_per_second": bps}}  # fmt: skip


def result(raw: dict[str, Any], streams: float | None, end: float = 104.01) -> Iperf3Result:
    return Iperf3Result(1e9, 1e9, 0, 0.0, 0.0, raw, mono_start=99.9, mono_end=end,
                        mono_streams=streams)  # fmt: skip


# omit 1 s, then 3 s measured: iperf3 restarts its clock at 0 when the omit ends
RAW = {
    "intervals": [
        interval(0.0, 1.0001, omitted=True),
        interval(0.00002, 1.0, 1.0e9),
        interval(1.0, 2.0, 1.1e9),
        interval(2.0, 3.0, 0.9e9),
    ]
}


def test_window_from_the_streams_anchor() -> None:
    w = iperf3.window(result(RAW, streams=100.0))
    assert w is not None and w.anchor == "streams"
    assert w.start == pytest.approx(100.0 + 1.0001 + 0.00002)
    assert w.end == pytest.approx(100.0 + 1.0001 + 3.0)


def test_window_falls_back_to_the_end_when_the_anchor_is_late() -> None:
    late = iperf3.window(result(RAW, streams=100.5))  # would end after the client returned
    assert late is not None and late.anchor == "end"
    assert (late.start, late.end) == pytest.approx((104.01 - 2.99998, 104.01))
    unseen = iperf3.window(result(RAW, streams=None))
    assert unseen is not None and unseen.anchor == "end"
    assert iperf3.window(result({"intervals": []}, streams=100.0)) is None


def test_receiver_intervals() -> None:
    server = {"intervals": [*RAW["intervals"], interval(3.0, 3.0004, 5e9)]}  # short tail
    forward = {**RAW, "start": {"test_start": {"reverse": 0}}, "server_output_json": server}
    assert iperf3.receiver_interval_bps(result(forward, 100.0)) == [1.0e9, 1.1e9, 0.9e9]
    # reverse: the client received, its own intervals count
    reverse = {**forward, "start": {"test_start": {"reverse": 1}}, "server_output_json": {}}
    assert iperf3.receiver_interval_bps(result(reverse, 100.0)) == [1.0e9, 1.1e9, 0.9e9]


def test_stream_watch_counts_new_sockets() -> None:
    import socket

    watch = StreamWatch(2).start()
    a, b = socket.socketpair()
    try:
        for _ in range(200):
            if watch.seen is not None:
                break
            import time

            time.sleep(0.005)
        assert watch.stop() is not None
    finally:
        a.close()
        b.close()


def test_ping_counts_only_probes_inside_the_window(tmp_path: Path) -> None:
    out = tmp_path / "ping.json"
    # sent at 0.0 .. 0.9; rtt 5 ms, the one sent at 0.3 lost
    sent = [round(0.1 * i, 1) for i in range(10)]
    rtts = [None if i == 3 else 5.0 for i in range(10)]
    rtts[7] = 250.0  # sent inside, answered after the window ended
    out.write_text(json.dumps({"rtts_ms": rtts, "sent_mono": sent}))
    full = parse(out)
    assert (full.sent, full.received) == (10, 9)
    inside = full.inside(0.2, 0.75)
    # probes 0.2 .. 0.7: 0.3 lost, 0.7 answered too late, 4 answered inside
    assert (inside.sent, inside.received) == (5, 4)
    assert inside.rtts_ms == [5.0] * 4
    # older files without send times: nothing can be placed in the window
    out.write_text(json.dumps({"rtts_ms": [1.0, 2.0]}))
    assert parse(out).inside(0.0, 10.0) == PingResult(0, 0, [], [])
