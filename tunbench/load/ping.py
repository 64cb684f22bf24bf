"""ICMP echo through the forwarder, for ``verify`` and for latency under load.

Contract as every runner: :func:`argv` builds the child command (run inside namespace
``-a`` through :mod:`tunbench.system.nsexec`), :func:`parse` reads what it wrote. The child sends
``--count`` echo requests ``--interval`` apart on a raw ICMP socket and writes every
round-trip time (``null`` for a lost one) and when each request left
(``time.monotonic()``) as JSON. No ``ping`` binary is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunbench.errors import MeasurementError
from tunio.csum import checksum


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    rtts_ms: list[float]
    # every request: when it left (monotonic s) and its RTT in ms (None: no reply)
    probes: list[tuple[float, float | None]] = field(default_factory=list)

    def inside(self, start: float, end: float) -> PingResult:
        """Only the requests sent inside ``[start, end]``; a reply that came after
        ``end`` is left out as well (it no longer measured the load)."""
        kept = [(t, r) for t, r in self.probes if start <= t <= end]
        rtts = [r for t, r in kept if r is not None and t + r / 1000.0 <= end]
        lost = sum(1 for _, r in kept if r is None)
        return PingResult(len(rtts) + lost, len(rtts), rtts, kept)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile of the RTTs (``q`` in 0..100)."""
        if not self.rtts_ms:
            return None
        import numpy as np

        return float(np.percentile(self.rtts_ms, q, method="inverted_cdf"))


# verify's ping check: ICMP gets through and every echo comes back, 5 of them 20 ms apart
# (0.1 s; the byte-for-byte checks are the streams')
CHECK_COUNT, CHECK_INTERVAL = 5, 0.02


def argv(target: str, count: int, interval: float, out: Path, timeout: float = 1.0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tunbench.load.ping",
        target,
        "--count",
        str(count),
        "--interval",
        str(interval),
        "--timeout",
        str(timeout),
        "--out",
        str(out),
    ]


def parse(path: Path) -> PingResult:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"ping wrote no usable result ({exc})") from exc
    rtts = [float(r) for r in doc["rtts_ms"] if r is not None]
    sent_at = doc.get("sent_mono") or []
    probes = [
        (float(t), None if r is None else float(r))
        for t, r in zip(sent_at, doc["rtts_ms"], strict=False)
        if t is not None
    ]
    return PingResult(sent=len(doc["rtts_ms"]), received=len(rtts), rtts_ms=rtts, probes=probes)


def _echo(ident: int, seq: int, payload: bytes) -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = checksum(head + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def _child(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tunbench.load.ping")
    p.add_argument("target")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--out", required=True)
    a = p.parse_args(args)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    rtts: list[float | None] = [None] * a.count
    sent_mono: list[float | None] = [None] * a.count
    sent_at: dict[int, float] = {}
    payload = os.urandom(56)
    next_send = time.monotonic()
    seq = 0
    deadline = None
    while True:
        now = time.monotonic()
        if seq < a.count and now >= next_send:
            sent_at[seq] = sent_mono[seq] = now
            sock.sendto(_echo(ident, seq, payload), (a.target, 0))
            seq += 1
            next_send = now + a.interval
            if seq == a.count:
                deadline = now + a.timeout
        if deadline is not None and (now >= deadline or len(sent_at) == 0):
            break
        wait = max(0.0, (next_send if seq < a.count else (deadline or now)) - now)
        ready, _, _ = select.select([sock], [], [], wait)
        if ready:
            data = sock.recv(2048)
            ihl = (data[0] & 0x0F) * 4
            icmp_type, _, _, rid, rseq = struct.unpack_from("!BBHHH", data, ihl)
            if icmp_type == 0 and rid == ident and rseq in sent_at:
                rtts[rseq] = (time.monotonic() - sent_at.pop(rseq)) * 1000.0
                if data[ihl + 8 :] != payload:
                    rtts[rseq] = None  # corrupted reply counts as lost
    Path(a.out).write_text(json.dumps({"rtts_ms": rtts, "sent_mono": sent_mono}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
