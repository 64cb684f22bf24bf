"""iperf3 through libiperf and the PyPI ``iperf3`` wrapper, one child process per role.

Contract (shared by every runner): ``*_argv`` builds the child command, which the session
starts inside a namespace with :func:`tunbench.system.procs.spawn`, waits on with a deadline and
stops with :func:`tunbench.system.procs.stop`; :func:`parse` turns the raw output into numbers.

The child (``python -m tunbench.load.iperf3child server|client ...``, started through
:mod:`tunbench.system.nsexec`) sets the test up with the wrapper's ``Server``/``Client`` but runs
it by calling libiperf itself: the wrapper's ``run()`` reads the JSON from its stdout pipe on
some versions (any whose version string does not start with "iperf 3.1") and from
``iperf_get_test_json_output_string`` on others, and that pipe fills up on long tests unless
someone drains it, racing the wrapper for the JSON. Here libiperf's stdout goes to
/dev/null and the JSON always comes from ``iperf_get_test_json_output_string``, which every
libiperf from 3.1 on has; :func:`check_available` refuses older ones up front. The client
writes ``{"t_start", "t_end", "raw"}`` to ``--out``: wall-clock bounds of the test as it saw
them and the raw iperf3 JSON, which the parent parses with the wrapper's ``TestResult``.
The server writes nothing: one test, then it exits.

Timeline: the client child also records ``time.monotonic()`` (one clock for every process
on the machine, the sampler's too) before and after the test, and the moment it opened
the sockets of every stream (the test starts one control message later); :func:`window`
places iperf3's own interval timeline on that clock. The client asks the server for its
output too, so the receiver's intervals are in the raw JSON whichever side receives.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunbench.errors import MeasurementError, PrerequisiteError

DEFAULT_PORT = 5201
TCP_LISTEN = "0A"
JSON_STRING = "iperf_get_test_json_output_string"  # libiperf >= 3.1
BIDIR = "iperf_set_test_bidirectional"  # libiperf >= 3.7
BIDIR_SUMS = ("sum", "sum_bidir_reverse")


@dataclass(frozen=True)
class ClientOptions:
    """What the client is asked to do; recorded in the result metadata."""

    duration: int = 10
    omit: int = 1
    udp: bool = False
    bandwidth: int = 0
    parallel: int = 1
    reverse: bool = False
    bidir: bool = False  # both directions at once (libiperf >= 3.7)
    blksize: int = 0
    port: int = DEFAULT_PORT
    window: int = 0  # socket buffer bytes on both ends (iperf3 -w); 0 = the kernel's default
    burst: int = 0  # paced: packets sent per wake-up (iperf3 -b RATE/BURST); 0 = iperf3's one


@dataclass(frozen=True)
class Iperf3Result:
    """Numbers from one client run, SI units; receiver-side throughput."""

    bps: float
    sent_bps: float
    retransmits: int | None
    t_start: float
    t_end: float
    raw: dict[str, Any]
    lost_percent: float | None = None
    jitter_ms: float | None = None
    packets: int | None = None  # UDP: datagrams that arrived
    pps: float | None = None  # UDP: datagrams that arrived, per second
    mono_start: float | None = None  # time.monotonic() around the test, and when its
    mono_end: float | None = None  # streams were all connected (None: not seen)
    mono_streams: float | None = None
    bps_fwd: float | None = None  # --bidir: client -> server (a -> b), receiver side
    bps_rev: float | None = None  # --bidir: server -> client (b -> a); bps is their sum


@dataclass(frozen=True)
class Window:
    """The measured interval (after ``omit``) on the ``time.monotonic()`` clock."""

    start: float
    end: float
    anchor: str  # "streams": placed from the test's start; "end": from when it returned


def _intervals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [iv.get("sum", {}) for iv in doc.get("intervals") or []]


def window(res: Iperf3Result) -> Window | None:
    """Where iperf3's measured intervals lie on the monotonic clock.

    iperf3 reports intervals relative to the start of its test, restarting at 0 when the
    ``--omit`` seconds end. Anchored at the moment all streams were connected (the test
    starts one control message later), the window is that moment + the omitted seconds +
    the measured intervals' start and end. If that would end after the client returned
    (the anchor was missed), it is placed to end when the client returned instead: late
    by the time the results exchange took, a few milliseconds. None if iperf3 reported
    no measured interval or the child did not record the clock.
    """
    sums = _intervals(res.raw)
    measured = [s for s in sums if not s.get("omitted")]
    if not measured or res.mono_end is None:
        return None
    omitted = max((float(s.get("end", 0.0)) for s in sums if s.get("omitted")), default=0.0)
    first, last = float(measured[0].get("start", 0.0)), float(measured[-1].get("end", 0.0))
    if res.mono_streams is not None:
        start = res.mono_streams + omitted + first
        end = res.mono_streams + omitted + last
        if end <= res.mono_end + 0.02:
            return Window(start, end, "streams")
    return Window(res.mono_end - (last - first), res.mono_end, "end")


def receiver_interval_bps(res: Iperf3Result, min_seconds: float = 0.5) -> list[float]:
    """Bits/s of each measured interval on the receiving side, summed over the clients of
    ``--iperf-procs per-stream`` (:func:`combine`); see :func:`_receiver_intervals`."""
    pairs = res.raw.get("tunbench_pairs") or []
    if not pairs:
        return _receiver_intervals(res, min_seconds)
    own = [_receiver_intervals(replace(res, raw=raw), min_seconds) for raw in pairs]
    first = _receiver_intervals(replace(res, raw={**res.raw, "tunbench_pairs": []}), min_seconds)
    n = min(len(x) for x in [first, *own])
    return [first[i] + sum(x[i] for x in own) for i in range(n)]


def _receiver_intervals(res: Iperf3Result, min_seconds: float = 0.5) -> list[float]:
    """Bits/s of each measured interval on the receiving side (the client's own intervals
    with ``--reverse``, else the server's, which the client asked for); the short tail
    interval iperf3 sometimes adds is left out."""
    raw = res.raw
    if res.bps_rev is not None:  # --bidir: both directions of the client's own intervals
        return [
            sum(float((iv.get(k) or {}).get("bits_per_second", 0.0)) for k in BIDIR_SUMS)
            for iv in raw.get("intervals") or []
            if not (iv.get("sum") or {}).get("omitted")
            and float((iv.get("sum") or {}).get("seconds", 0.0)) >= min_seconds
        ]
    reverse = bool(raw.get("start", {}).get("test_start", {}).get("reverse"))
    server = raw.get("server_output_json")
    doc = raw if reverse or not isinstance(server, dict) else server
    return [
        float(s.get("bits_per_second", 0.0))
        for s in _intervals(doc)
        if not s.get("omitted") and float(s.get("seconds", 0.0)) >= min_seconds
    ]


def check_available() -> str:
    """Load libiperf through the wrapper; return its version or raise PrerequisiteError."""
    try:
        import iperf3
    except ImportError as exc:
        raise PrerequisiteError(
            "the iperf3 Python package is missing: install tunbench's dependencies"
        ) from exc
    import ctypes.util

    # Load the library the way the wrapper does first: a wrapper object whose constructor
    # failed raises again from its __del__, which would bury this message.
    try:
        ctypes.CDLL(ctypes.util.find_library("libiperf") or "libiperf.so.0")
    except OSError as exc:
        raise PrerequisiteError(
            "libiperf is missing: install the Debian packages iperf3 and libiperf0"
        ) from exc
    client = iperf3.Client()
    version = str(client.iperf_version)
    if not hasattr(client.lib, JSON_STRING):
        raise PrerequisiteError(
            f"libiperf is too old ({version}): tunbench needs iperf 3.1 or later, "
            f"whose libiperf has {JSON_STRING}"
        )
    return version


def server_argv(bind: str, port: int = DEFAULT_PORT) -> list[str]:
    """The child argv for a one-test iperf3 server bound to ``bind``."""
    return [
        sys.executable,
        "-m",
        "tunbench.load.iperf3child",
        "server",
        "--bind",
        bind,
        "--port",
        str(port),
    ]


def client_argv(server: str, opts: ClientOptions, out: Path) -> list[str]:
    """The child argv for an iperf3 client against ``server``."""
    argv = [
        sys.executable,
        "-m",
        "tunbench.load.iperf3child",
        "client",
        "--server",
        server,
        "--port",
        str(opts.port),
        "--duration",
        str(opts.duration),
        "--omit",
        str(opts.omit),
        "--parallel",
        str(opts.parallel),
        "--bandwidth",
        str(opts.bandwidth),
        "--blksize",
        str(opts.blksize),
        "--window",
        str(opts.window),
        "--burst",
        str(opts.burst),
        "--out",
        str(out),
    ]
    if opts.udp:
        argv.append("--udp")
    if opts.reverse:
        argv.append("--reverse")
    if opts.bidir:
        argv.append("--bidir")
    return argv


def listening(pid: int, port: int = DEFAULT_PORT) -> bool:
    """True when process ``pid``'s namespace has a TCP socket listening on ``port``.

    /proc/<pid>/net/tcp lists the sockets of the namespace that process lives in, so this
    checks readiness without entering the namespace and without sleeping on a guess.
    """
    want = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[1].endswith(want) and parts[3] == TCP_LISTEN:
                return True
    return False


def parse(path: Path) -> Iperf3Result:
    """Read the client child's output file and parse it with the wrapper's TestResult."""
    import iperf3

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"iperf3 client wrote no usable result ({exc})") from exc
    raw_text = doc.get("raw") or "{}"
    result = iperf3.TestResult(raw_text)
    if result.error:
        raise MeasurementError(f"iperf3: {result.error}")
    clock = {k: doc.get(k) for k in ("mono_start", "mono_end", "mono_streams")}
    udp = result.protocol == "UDP"
    if udp:
        return _udp(result, doc, clock)
    end = result.json.get("end") or {}
    if "sum_received_bidir_reverse" in end:
        return bidir(result.json, doc, clock)
    return Iperf3Result(
        bps=float(result.received_bps),
        sent_bps=float(result.sent_bps),
        retransmits=result.retransmits,
        t_start=doc["t_start"],
        t_end=doc["t_end"],
        raw=result.json,
        **clock,
    )


def combine(parts: list[Iperf3Result]) -> Iperf3Result:
    """One result from the clients of ``--iperf-procs per-stream`` (one per stream, run at
    once): their receiver totals summed. ``raw`` is the first client's JSON with the others
    in ``raw["tunbench_pairs"]``; the timeline is the first client's, and each measured
    interval's throughput is summed over the clients (``receiver_interval_bps``)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def total(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) if present else None

    retr = [p.retransmits for p in parts if p.retransmits is not None]
    packets = [p.packets for p in parts if p.packets is not None]
    sent = sum(p.sent_bps for p in parts)
    bps = sum(p.bps for p in parts)
    lost = None
    if first.lost_percent is not None and sent:
        lost = max(0.0, 100.0 * (1 - bps / sent))
    return replace(
        first,
        bps=bps,
        sent_bps=sent,
        retransmits=sum(retr) if retr else None,
        raw={**first.raw, "tunbench_pairs": [p.raw for p in parts[1:]]},
        lost_percent=lost,
        packets=sum(packets) if packets else None,
        pps=total([p.pps for p in parts]),
        bps_fwd=total([p.bps_fwd for p in parts]),
        bps_rev=total([p.bps_rev for p in parts]),
    )


def bidir(raw: dict[str, Any], doc: dict[str, Any], clock: dict[str, Any]) -> Iperf3Result:
    """TCP ``--bidir``: each direction's receiver total (``end.sum_received`` is a -> b,
    ``end.sum_received_bidir_reverse`` b -> a), and their sum as ``bps``."""
    end = raw.get("end") or {}
    fwd = float((end.get("sum_received") or {}).get("bits_per_second") or 0.0)
    rev = float((end.get("sum_received_bidir_reverse") or {}).get("bits_per_second") or 0.0)
    sent = sum(
        float((end.get(k) or {}).get("bits_per_second") or 0.0)
        for k in ("sum_sent", "sum_sent_bidir_reverse")
    )
    retr = [
        int(r)
        for r in (
            (end.get(k) or {}).get("retransmits") for k in ("sum_sent", "sum_sent_bidir_reverse")
        )
        if r is not None
    ]
    return Iperf3Result(
        bps=fwd + rev,
        sent_bps=sent,
        retransmits=sum(retr) if retr else None,
        t_start=doc["t_start"],
        t_end=doc["t_end"],
        raw=raw,
        bps_fwd=fwd,
        bps_rev=rev,
        **clock,
    )


def _udp(result: Any, doc: dict[str, Any], clock: dict[str, Any]) -> Iperf3Result:
    """UDP: what arrived. The wrapper's ``bps`` is iperf3's ``end.sum``, the *sender's* rate
    (iperf3 keeps it for compatibility), which hides any loss; ``end.sum_received`` (iperf3
    >= 3.11) is the receiver's. Loss is 1 - bytes received / bytes sent: iperf3's own lost
    counter also counts the ``--omit`` seconds and can exceed 100 %."""
    end = result.json.get("end", {})
    sent = end.get("sum_sent") or end.get("sum") or {}
    sent_bps = float(sent.get("bits_per_second", result.bps))
    got = end.get("sum_received")
    blksize = int(result.json.get("start", {}).get("test_start", {}).get("blksize") or 0)
    if got and sent.get("bytes"):
        bps = float(got["bits_per_second"])
        lost = max(0.0, 100.0 * (1 - float(got["bytes"]) / float(sent["bytes"])))
        packets = int(got["bytes"]) // blksize if blksize else None
        seconds = float(got["seconds"])
    else:  # older iperf3: only the sender's sum, scaled by its loss counter
        lost = min(100.0, float(result.lost_percent))
        bps = sent_bps * (1 - lost / 100)
        packets = round(int(result.packets) * (1 - lost / 100))
        seconds = float(end.get("sum", {}).get("seconds", 0.0))
    return Iperf3Result(
        bps=bps,
        sent_bps=sent_bps,
        retransmits=None,
        t_start=doc["t_start"],
        t_end=doc["t_end"],
        raw=result.json,
        lost_percent=lost,
        jitter_ms=float(result.jitter_ms),
        packets=packets,
        pps=packets / seconds if packets is not None and seconds else None,
        **clock,
    )
