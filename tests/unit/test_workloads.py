"""The workloads' pure parts: output parsers on captured real output, the zero-loss search
with a fake trial, the row key and table columns of the new figures, option checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.cli import cellargs
from tunbench.cli import main as cli
from tunbench.errors import MeasurementError, UsageError
from tunbench.load import iperf2, iperf3, search, sockperf
from tunbench.report import tables

from resultdocs import make_doc

# sockperf 3.7 ping-pong --tcp -m 64 --full-rtt over loopback on the project's machine
SOCKPERF_OUT = """\
sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m
sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)

[ 0] IP = 127.0.0.1       PORT = 15002 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=2.000 sec; Warm up time=400 msec; SentMessages=114195; \
ReceivedMessages=114194
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=1.549 sec; SentMessages=89478; ReceivedMessages=89478
sockperf: \x1b[2;35m====> avg-rtt=17.283 (std-dev=100.532)\x1b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Round trip is 17.283 usec
sockperf: \x1b[2;35mTotal 89478 observations\x1b[0m; each percentile contains 894.78 observations
sockperf: ---> <MAX> observation = 6244.196
sockperf: ---> percentile 99.999 = 5421.850
sockperf: ---> percentile 99.990 = 5073.144
sockperf: ---> percentile 99.900 =  520.449
sockperf: ---> percentile 99.000 =   20.580
sockperf: ---> percentile 90.000 =   14.902
sockperf: ---> percentile 75.000 =   14.341
sockperf: ---> percentile 50.000 =   14.010
sockperf: ---> percentile 25.000 =   13.630
sockperf: ---> <MIN> observation =   13.359
"""

# iperf 2.1.8 -c ... -e --connect-only=500 (last lines)
IPERF2_OUT = """\
[  1] local 127.0.0.1%lo port 49778 connected with 127.0.0.1 port 15001 (sock=3) \
(icwnd/mss/irtt=319/32741/6) (ct=0.02 ms) on 2026-11-24 17:14:24 (UTC)
[ CT] final connect times (min/avg/max/stdev) = 0.012/0.026/2.708/170.746 ms (tot/err) = 500/0
"""

# iperf3 3.12 --bidir -J over loopback, trimmed to what the parser reads
BIDIR_RAW: dict[str, Any] = {
    "start": {"test_start": {"bidir": 1}},
    "intervals": [
        {
            "sum": {"start": 0, "end": 1.0, "seconds": 1.0, "bits_per_second": 12.1585e9},
            "sum_bidir_reverse": {
                "start": 0,
                "end": 1.0,
                "seconds": 1.0,
                "bits_per_second": 10.9762e9,
            },
        }
    ],
    "end": {
        "sum_sent": {
            "seconds": 1.000408,
            "bytes": 1520435200,
            "bits_per_second": 12158520923.46,
            "retransmits": 5,
        },
        "sum_received": {
            "seconds": 1.001323,
            "bytes": 1517813760,
            "bits_per_second": 12126466764.47,
        },
        "sum_sent_bidir_reverse": {
            "seconds": 1.000408,
            "bytes": 1376256000,
            "bits_per_second": 11005557732.45,
            "retransmits": 4,
        },
        "sum_received_bidir_reverse": {
            "seconds": 1.001323,
            "bytes": 1372585984,
            "bits_per_second": 10966179616.37,
        },
    },
}


def test_sockperf_parser_on_real_output() -> None:
    r = sockperf.parse_text(SOCKPERF_OUT)
    assert r.transactions == 89478 and r.seconds == pytest.approx(1.549)
    assert r.transactions_per_s == pytest.approx(89478 / 1.549)
    assert (r.p(50), r.p(90), r.p(99)) == (14.010, 14.902, 20.580)
    assert r.avg_us == pytest.approx(17.283)


def test_sockperf_parser_refuses_output_without_summary() -> None:
    with pytest.raises(MeasurementError, match="no ping-pong summary"):
        sockperf.parse_text("sockperf: ERROR: connect() failed\n")


def test_iperf2_connect_only_parser() -> None:
    assert iperf2.parse_connect_only(IPERF2_OUT) == (500, 0)
    with pytest.raises(MeasurementError, match="no totals"):
        iperf2.parse_connect_only(IPERF2_OUT.splitlines()[0])


def test_iperf2_result_file(tmp_path: Path) -> None:
    out = tmp_path / "crr.json"
    doc = {"connections": 1000, "errors": 10, "mono_start": 5.0, "mono_end": 7.0, "error": None}
    out.write_text(json.dumps(doc))
    r = iperf2.parse(out)
    assert r.connections_per_s == pytest.approx(495.0) and r.seconds == pytest.approx(2.0)


def test_bidir_parser_sums_both_directions() -> None:
    r = iperf3.bidir(BIDIR_RAW, {"t_start": 1.0, "t_end": 2.0}, {"mono_end": 3.0})
    assert r.bps_fwd == pytest.approx(12126466764.47)
    assert r.bps_rev == pytest.approx(10966179616.37)
    assert r.bps == pytest.approx(r.bps_fwd + r.bps_rev)  # type: ignore[operator]
    assert r.retransmits == 9
    assert iperf3.receiver_interval_bps(r) == pytest.approx([12.1585e9 + 10.9762e9])


def fake_link(capacity: float, sender_max: float) -> search.TrialFn:
    """A path that loses everything above ``capacity`` pps; the sender tops out at
    ``sender_max``. Records the rates asked for."""

    def trial(rate: float | None, full: bool) -> search.Trial:
        offered = sender_max if rate is None else min(rate, sender_max)
        got = min(offered, capacity)
        return search.Trial(offered, got, 100.0 * (1 - got / offered), full)

    return trial


def test_search_finds_the_capacity_within_resolution() -> None:
    r = search.zero_loss(fake_link(300_000, 1_000_000), max_loss=0.1)
    assert 300_000 * (1 - search.RESOLUTION) <= r.rate_pps <= 300_000
    assert not r.hit_upper and r.confirmed is not None and r.confirmed.full
    phases = [s.phase for s in r.steps]
    assert phases[0] == "probe" and phases[-2:] == ["confirm", "above"]
    assert len([p for p in phases if p not in ("confirm", "above")]) <= search.MAX_STEPS
    assert all(s.passed == (s.trial.loss_percent <= 0.1) for s in r.steps)
    assert r.above is not None and r.above.offered_pps == pytest.approx(2 * r.rate_pps)
    assert r.above.loss_percent > 0.1 and not r.unsettled


def stalled(capacity: float, stalled_trials: int, loss: float = 5.0) -> search.TrialFn:
    """A path of ``capacity`` pps whose first ``stalled_trials`` trials (the probe
    included) also lose ``loss`` % at any rate: the machine stalled the forwarder then."""
    count = [0]
    link = fake_link(capacity, 1_000_000)

    def trial(rate: float | None, full: bool) -> search.Trial:
        count[0] += 1
        t = link(rate, full)
        if count[0] > stalled_trials:
            return t
        got = t.received_pps * (1 - loss / 100)
        return search.Trial(t.offered_pps, got, 100 * (1 - got / t.offered_pps), full)

    return trial


def test_a_stall_that_misled_the_search_is_found_by_twice_the_rate_and_searched_again() -> None:
    """Replays a failure: the probe and the first trials ran while the machine stalled,
    so the bisection settled at a fraction of the capacity; twice that rate then held.
    The search goes on above it and ends near the capacity, twice which loses."""
    r = search.zero_loss(stalled(300_000, 4), max_loss=2.0)
    aboves = [s for s in r.steps if s.phase == "above"]
    assert len(aboves) == 2 and aboves[0].passed and not aboves[1].passed
    assert 300_000 * (1 - search.RESOLUTION) <= r.rate_pps <= 300_000
    assert r.above is aboves[1].trial and not r.unsettled and not r.hit_upper
    assert r.confirmed is not None and r.confirmed.offered_pps == pytest.approx(r.rate_pps)


def test_when_twice_the_rate_still_holds_after_the_rechecks_the_answer_is_unsettled() -> None:
    r = search.zero_loss(stalled(300_000, 4), max_loss=2.0, rechecks=0)
    assert r.unsettled and r.above is not None and r.above.loss_percent <= 2.0
    assert r.rate_pps < 150_000  # the answer the stall left, kept and marked


def test_a_recheck_that_holds_nothing_higher_keeps_the_first_answer() -> None:
    """Twice the rate held in a short trial, but no full trial above it holds: the
    confirmations step back down to the first answer, which stands, marked unsettled."""

    def trial(rate: float | None, full: bool) -> search.Trial:
        if rate is None:
            return search.Trial(400_000, 90_000, 77.5, full)
        lucky = not full and 190_000 <= rate <= 215_000  # short trials there held
        loss = 0.0 if rate <= 100_000 or lucky else 50.0
        return search.Trial(rate, rate * (1 - loss / 100), loss, full)

    r = search.zero_loss(trial, max_loss=0.1)
    first = next(s for s in r.steps if s.phase == "confirm" and s.passed)
    assert r.confirmed is not None and r.rate_pps == first.rate_pps
    failed = [s.rate_pps for s in r.steps if s.phase == "confirm" and not s.passed]
    assert failed and min(failed) > 2 * first.rate_pps  # type: ignore[operator]
    assert r.unsettled and [s.phase for s in r.steps].count("above") == 2


def test_search_stops_at_the_sender_when_nothing_is_lost() -> None:
    r = search.zero_loss(fake_link(2_000_000, 500_000), max_loss=0.1)
    assert r.hit_upper and r.rate_pps == pytest.approx(500_000)
    assert [s.phase for s in r.steps] == ["probe", "confirm"]


def test_search_stops_where_the_paced_sender_falls_short() -> None:
    """Paced, the sender tops out below its unpaced rate (iperf3 without a burst): a trial
    asked for more than it can send passes on what it did send, which is the answer, and
    the sender, not the path, is named the limit."""

    def trial(rate: float | None, full: bool) -> search.Trial:
        offered = 400_000 if rate is None else min(rate, 240_000)
        got = min(offered, 300_000)
        return search.Trial(offered, got, 100.0 * (1 - got / offered), full)

    r = search.zero_loss(trial, max_loss=0.1)
    assert r.hit_upper and r.confirmed is not None
    assert r.rate_pps == pytest.approx(240_000)
    assert r.confirmed.offered_pps == pytest.approx(240_000)
    assert [s.phase for s in r.steps] == ["probe", "search", "confirm"]


def test_search_steps_down_when_the_confirmation_fails() -> None:
    """Short trials pass at a rate the full trial does not: the rate goes down until a
    full trial passes, at most CONFIRM_TRIES of them."""

    def trial(rate: float | None, full: bool) -> search.Trial:
        cap = 200_000 if full else 300_000
        offered = 1_000_000 if rate is None else rate
        got = min(offered, cap)
        return search.Trial(offered, got, 100.0 * (1 - got / offered), full)

    r = search.zero_loss(trial, max_loss=0.1, confirm_tries=3)
    assert r.confirmed is None and r.rate_pps == 0.0  # 0.95^2 of ~300k is still above 200k
    assert [s.phase for s in r.steps].count("confirm") == 3
    r = search.zero_loss(trial, max_loss=0.1, confirm_tries=10)
    assert r.confirmed is not None and r.rate_pps <= 200_000


def test_search_confirms_below_a_lossy_edge() -> None:
    """Replays a CI failure: short trials passed with 0.01-0.03 % loss at 74-82 kpps, full
    trials there lost 0.13-0.3 %, and three 5 % steps down never left that edge, so the
    search gave up though 42 and 64 kpps had lost nothing. Now the confirmation goes down
    towards the highest loss-free short trial and ends on it."""

    def trial(rate: float | None, full: bool) -> search.Trial:
        if rate is None:
            return search.Trial(391_558, 87_074, 77.76, full)
        if rate < 70_000:
            loss = 0.0
        elif full or rate >= 84_000:
            loss = 0.25
        else:
            loss = 0.02
        return search.Trial(rate, rate * (1 - loss / 100), loss, full)

    r = search.zero_loss(trial, max_loss=0.1)
    confirms = [s for s in r.steps if s.phase == "confirm"]
    assert r.confirmed is not None and len(confirms) == search.CONFIRM_TRIES
    clean = max(
        s.rate_pps
        for s in r.steps
        if s.phase == "search" and s.rate_pps and s.trial.loss_percent == 0
    )
    assert r.rate_pps == pytest.approx(clean) and r.rate_pps < 70_000
    assert confirms[0].rate_pps > confirms[1].rate_pps > confirms[2].rate_pps  # type: ignore[operator]


def test_search_passes_is_inclusive_and_needs_traffic() -> None:
    assert search.passes(search.Trial(10, 9.99, 0.1), 0.1)
    assert not search.passes(search.Trial(10, 0, 0.0), 0.1)


def wl_doc(kind: str = "stream", **fields: Any) -> dict[str, Any]:
    doc = make_doc("sync-normal")
    doc["metadata"]["workload"] = {"duration": 2, "kind": kind, **fields}
    return doc


def test_workloads_are_separate_rows_and_old_files_read_as_stream() -> None:
    old = make_doc("sync-normal")
    old["metadata"]["workload"] = {"duration": 2}  # before the workload options existed
    stream = wl_doc()
    rr = wl_doc("rr", rr_size=64)
    rr["results"].update(gbps=None, transactions_per_s=20_000.0, latency_p50_us=60.0)
    rr_big = wl_doc("rr", rr_size=1000)
    rr_big["results"].update(gbps=None, transactions_per_s=10_000.0)
    bidir = wl_doc(bidir=True)
    bidir["results"].update(gbps_fwd=1.0, gbps_rev=2.0)
    recs = [results.flat(d) for d in (old, stream, rr, rr_big, bidir)]
    assert recs[0]["workload_key"] == recs[1]["workload_key"]
    assert recs[2]["workload"] == "rr"
    df = tables.grouped(recs)
    assert len(df) == 4
    table = tables.markdown(recs)
    assert "TPS" in table and "p50 µs" in table and "Gbps rev" in table
    assert "rr 64 B" in table and "rr 1000 B" in table and "bidir" in table
    assert "conn/s" not in table  # no row has it
    rr_row = df[df["Workload"] == "rr 64 B mtu 1500"].iloc[0]
    assert rr_row["n"] == 1 and rr_row["TPS"] == 20_000.0  # measured, though it has no Gbps
    assert "FAILED" not in table
    csv = tables.csv(recs)
    assert "0-loss pps" in csv.splitlines()[0] and "TPS" in csv.splitlines()[0]


def test_zero_loss_column_in_kpps() -> None:
    doc = wl_doc("zero-loss", pkt_size=256, max_loss=0.1)
    doc["results"].update(zero_loss_pps=123_400.0, zero_loss_gbps=0.2527)
    table = tables.markdown([results.flat(doc)])
    assert "0-loss kpps" in table and "123.4" in table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workload", "rr", "--pkt-size", "64"], "--pkt-size: not an option of --workload rr"),
        (["--bidir", "--udp"], "no --udp or --reverse"),
        (["--workload", "zero-loss", "--pkt-size", "9000"], "expected 64..1500"),
        (["--workload", "rr", "--rr-size", "4"], "smallest message"),
        (["--workload", "crr", "--bidir"], "--bidir: not an option of --workload crr"),
    ],
)
def test_workload_options_refused(argv: list[str], message: str) -> None:
    a = cli.build_parser().parse_args(["run", "sync-normal", *argv])
    with pytest.raises(UsageError, match=message):
        cellargs.cell_options(a)


def test_workload_options_only_what_the_kind_uses() -> None:
    a = cli.build_parser().parse_args(["run", "x", "--workload", "zero-loss", "--pkt-size", "64"])
    w = cellargs.cell_options(a).workload
    assert (w.kind, w.pkt_size, w.max_loss, w.rr_size) == ("zero-loss", 64, 0.1, None)
    a = cli.build_parser().parse_args(["run", "x", "--workload", "rr"])
    assert cellargs.cell_options(a).workload.rr_size == 64


def _res(bps: float, intervals: list[float], retr: int) -> iperf3.Iperf3Result:
    raw = {
        "start": {"test_start": {"reverse": 1}},  # the client's own intervals are the receiver's
        "intervals": [{"sum": {"bits_per_second": b, "seconds": 1.0}} for b in intervals],
    }
    return iperf3.Iperf3Result(bps, bps * 1.01, retr, 1.0, 2.0, raw)


def test_per_stream_pairs_are_summed() -> None:
    parts = [_res(1e9, [1e9, 1.1e9], 3), _res(2e9, [2e9, 2e9, 2.1e9], 4)]
    r = iperf3.combine(parts)
    assert r.bps == pytest.approx(3e9) and r.sent_bps == pytest.approx(3.03e9)
    assert r.retransmits == 7
    assert len(r.raw["tunbench_pairs"]) == 1
    assert iperf3.receiver_interval_bps(r) == pytest.approx([3e9, 3.1e9])  # common intervals
    assert iperf3.combine(parts[:1]) is parts[0]


def test_per_stream_is_its_own_row() -> None:
    a = cli.build_parser().parse_args(
        ["run", "x", "--parallel", "4", "--iperf-procs", "per-stream"]
    )
    assert cellargs.cell_options(a).workload.iperf_procs == "per-stream"
    one, per = wl_doc(parallel=4), wl_doc(parallel=4, iperf_procs="per-stream")
    df = tables.grouped([results.flat(one), results.flat(per)])
    assert len(df) == 2 and "procs per-stream" in df["Workload"].iloc[1]


def test_the_schema_reads_a_missing_workload_option_as_its_default() -> None:
    """The result schema states what a file without a workload option ran; those are the
    defaults of WorkloadOptions (plus iperf3's --bidir), so old and new files key alike."""
    from dataclasses import asdict

    from tunbench.load.workloads import WorkloadOptions

    assert {**asdict(WorkloadOptions()), "bidir": False} == results.WORKLOAD_DEFAULTS


def test_a_search_without_a_rate_says_short_and_full_trials_apart() -> None:
    """Short trials that lost nothing beside confirmations that all lost too much: the
    message says which is which, not "least loss 0 %" next to "no rate kept"."""
    from tunbench.load.workloads import _no_rate

    def step(rate: float | None, loss: float, phase: str) -> search.Step:
        t = search.Trial(rate or 9e4, (rate or 9e4) * (1 - loss / 100), loss, phase == "confirm")
        return search.Step(rate, t, loss <= 2.0, phase)

    steps = [step(None, 40.0, "probe"), step(4.2e4, 0.0, "search"), step(4.0e4, 4.6, "confirm")]
    text = _no_rate(steps, 2.0)
    assert text.startswith("zero-loss: no rate kept loss within 2% (3 trials")
    assert "the lowest at 40,000 pps" in text
    assert "least loss 0% in a short trial, 4.6% in a confirmation" in text
    assert "in a confirmation" not in _no_rate(steps[:2], 2.0)
