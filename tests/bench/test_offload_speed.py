"""Benchmarks (pytest-benchmark) of the ``--gso split`` hot path: what one 64 KB TCP
super-packet costs with each offload engine (the ``engine`` fixture, tests/bench/conftest.py).
Grouped by operation so the table puts the engines side by side. No timing is asserted; each
run checks its output, and ``taskset -c 1 pytest tests/bench --benchmark-only`` prints the
table (see the closing notes)."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest

from forwarders.counters import Counters
from forwarders.gsopath import SplitRelay
from tunio.csum import checksum, pseudo_header_sum
from tunio.engine import Engine
from tunio.vnethdr import VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VirtioNetHdr

MSS, SEGMENTS = 1448, 44  # what the kernel hands a TUN reader at MTU 1500


def tcp_super_packet() -> tuple[VirtioNetHdr, bytes]:
    """A TCPv4 GSO read as the kernel produces it: NEEDS_CSUM, pseudo-header sum in place."""
    payload = os.urandom(MSS * SEGMENTS)
    src, dst = bytes([10, 0, 1, 1]), bytes([10, 0, 2, 1])
    tcp_len = 20 + len(payload)
    partial = pseudo_header_sum(src, dst, 6, tcp_len)
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, 1000, 5000, 5 << 4, 0x18, 512, partial, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, 7, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    hdr = VirtioNetHdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 40, MSS, 20, 16)
    return hdr, ip + tcp + payload


@pytest.fixture(scope="module")
def frame() -> tuple[VirtioNetHdr, bytes]:
    return tcp_super_packet()


@pytest.mark.benchmark(group="split")
def test_split(benchmark: Any, engine: Engine, frame: tuple[VirtioNetHdr, bytes]) -> None:
    hdr, pkt = frame
    segs = benchmark(engine.gso_split, pkt, hdr, 1500)
    assert len(segs) == SEGMENTS and all(len(s) == 1488 for s in segs)


@pytest.mark.benchmark(group="coalesce")
@pytest.mark.parametrize(
    ("verify", "flagged"),
    [(True, False), (True, True), (False, False)],
    ids=["verify-csum", "split-trusted", "no-verify"],
)
def test_coalesce(
    benchmark: Any,
    engine: Engine,
    frame: tuple[VirtioNetHdr, bytes],
    verify: bool,
    flagged: bool,
) -> None:
    """verify-csum: every checksum summed (packets from elsewhere); split-trusted: the
    forwarder's case, segments flagged as checksummed by the split; no-verify: --no-verify."""
    hdr, pkt = frame
    segs = engine.gso_split(pkt, hdr, 1500)
    trusted = b"\x01" * len(segs) if flagged else None
    out = benchmark(engine.gro_coalesce, segs, verify=verify, trusted=trusted)
    assert len(out) == 1
    merged_hdr, merged = out[0]
    assert merged_hdr.gso_size == MSS and merged[40:] == pkt[40:]


@pytest.mark.benchmark(group="cycle")
def test_split_and_coalesce_cycle(
    benchmark: Any, engine: Engine, frame: tuple[VirtioNetHdr, bytes]
) -> None:
    """What SplitRelay does with a batch of one read: split, coalesce, header + packet ready
    to write (the engine's split_frame and coalesce_frames, plus the forwarder's counting)."""
    hdr, pkt = frame
    relay, c = SplitRelay(1500, engine.name), Counters()
    raw = hdr.pack() + pkt
    frames = benchmark(relay.process, [raw], c)
    assert len(frames) == 1 and frames[0][50:] == pkt[40:]
