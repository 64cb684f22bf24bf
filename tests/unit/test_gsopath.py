"""The --gso split data path without a TUN device: batches, GRO across reads, counters.

Frames go through SplitRelay (and the framed stream over packet-preserving socketpairs)
with each offload engine; the super-packets come from tests/packets.py.
"""

from __future__ import annotations

import argparse
import select
import socket
from pathlib import Path

import pytest
import trio

from forwarders.counters import Counters, Forwarder
from forwarders.framed import Framed, TunCodec
from forwarders.frameio import read_ready, write_wait
from forwarders.gsopath import SplitRelay
from tunio.engine import Engine
from tunio.vnethdr import VIRTIO_NET_HDR_GSO_TCPV4, VirtioNetHdr

from packets import make_pkt, super_packet


def flow_reads(sport: int, reads: int, segs: int = 3, size: int = 100) -> list[bytes]:
    """Consecutive TCP super-packets of one flow, as TUN reads (vnet header + packet)."""
    out = []
    for i in range(reads):
        payload = bytes([sport, i]) * (segs * size // 2)
        hdr, pkt = super_packet(payload, size, sport=sport, seq=1000 + i * segs * size)
        out.append(hdr.pack() + pkt)
    return out


def test_batch_coalesces_flows_across_reads(engine: Engine) -> None:
    """Two flows, two reads each, interleaved: one frame per flow comes out, as GRO would
    merge them; per read (a batch of one) it would have been four frames."""
    a, b = flow_reads(1, 2), flow_reads(2, 2)
    relay, c = SplitRelay(1500, engine.name), Counters()
    frames = relay.process([a[0], b[0], a[1], b[1]], c)
    assert len(frames) == 2
    for frame, reads in zip(frames, (a, b), strict=True):
        hdr = VirtioNetHdr.unpack(frame)
        assert hdr.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 and hdr.gso_size == 100
        # the merged payload is both reads' payloads in order
        assert frame[10 + 40 :] == b"".join(r[10 + 40 :] for r in reads)
    assert c.segments_in == c.gro.packets_in == 12
    assert c.frames_out == c.gro.frames_out == 2 and c.gro.merged == 10
    assert c.gro.csum_trusted == 12 and c.gro.csum_verified == 0  # split's own checksums
    assert c.batches == 1 and c.batch_sizes == {"4-7": 1}
    per_read = Counters()
    assert sum(len(relay.process([r], per_read)) for r in (a[0], b[0], a[1], b[1])) == 4


@pytest.mark.parametrize("bad", [False, True])
def test_split_checksums_are_trusted_and_arriving_ones_verified(engine: Engine, bad: bool) -> None:
    """The segments split from NEEDS_CSUM super-packets are not summed again when coalescing
    (counted as trusted, none as verified); a packet that arrives with a checksum of its own
    (a GSO_NONE frame without NEEDS_CSUM) is verified in the same batch, and one with a bad
    checksum is written alone instead of being hidden inside a merged frame."""
    reads = flow_reads(1, 2)  # two reads of three 100-byte segments: seq 1000..1599
    relay, c = SplitRelay(1500, engine.name), Counters()
    assert len(relay.process(reads, c)) == 1
    assert (c.gro.csum_trusted, c.gro.csum_verified, c.gro.merged) == (6, 0, 5)
    own = make_pkt(bytes([7]) * 100, seq=1600, sport=1, bad_csum=bad)
    c = Counters()
    frames = relay.process([*reads, own_frame(own)], c)
    assert (c.gro.csum_trusted, c.gro.csum_verified, c.gro.bad_csum) == (6, 1, int(bad))
    if bad:
        assert len(frames) == 2 and frames[1] == own_frame(own)
    else:
        assert len(frames) == 1 and frames[0].endswith(own[40:])
    # --no-verify: nothing is checked or counted, the bad packet is merged too
    c = Counters()
    frames = SplitRelay(1500, engine.name, verify=False).process([*reads, own_frame(own)], c)
    assert len(frames) == 1 and (c.gro.csum_trusted, c.gro.csum_verified) == (0, 0)


def own_frame(pkt: bytes) -> bytes:
    """A TUN read of a packet that carries its own complete checksum: GSO_NONE, no flags."""
    return VirtioNetHdr().pack() + pkt


def test_malformed_frame_is_dropped_from_its_batch(engine: Engine) -> None:
    good = flow_reads(1, 2)
    relay, c = SplitRelay(1500, engine.name), Counters()
    frames = relay.process([good[0], b"\x01" * 5, VirtioNetHdr(1, 1).pack(), good[1]], c)
    assert len(frames) == 1 and c.malformed == 2 and c.drops == 2
    assert relay.process([b""], c) == [] and c.malformed == 3


def test_no_verify_and_batch_options_reach_the_relay() -> None:
    ns = argparse.Namespace(gso="split", mtu=9000, engine="python", verify=False, batch=7)
    relay = SplitRelay.from_args(ns)
    assert relay is not None
    assert (relay.mtu, relay.engine.name, relay.verify, relay.batch) == (9000, "python", False, 7)
    assert SplitRelay.from_args(argparse.Namespace(gso="passthrough")) is None


def test_batch_histogram_and_merge() -> None:
    c = Counters()
    for n in (1, 1, 2, 3, 4, 7, 8, 100, 128):
        c.batch(n)
    assert c.batch_sizes == {"1": 2, "2-3": 2, "4-7": 2, "8-15": 1, "64-127": 1, "128-255": 1}
    c.gro.add(10, 2, 8, 2, 1, 3, 6)
    total = Counters()
    total.merge(c)
    total.merge(c)
    assert total.batches == 18 and total.batch_sizes["1"] == 4
    assert (total.gro.packets_in, total.gro.frames_out, total.gro.bad_csum) == (20, 4, 2)
    assert (total.gro.csum_verified, total.gro.csum_trusted) == (6, 12)


def test_stats_report_the_coalescing_factor(tmp_path: Path) -> None:
    args = argparse.Namespace(stats=tmp_path / "s.json")
    fwd = Forwarder("x", args, [])
    c = fwd.counters("1to2")
    c.gro.add(88, 2, 86, 2, 0)
    fwd.counters("2to1")  # nothing coalesced: no factor
    stats = fwd.stats()["directions"]
    assert stats["1to2"]["coalescing_factor"] == 44.0
    assert stats["1to2"]["gro"]["merged"] == 86
    assert "coalescing_factor" not in stats["2to1"]


def test_read_ready_and_write_wait_on_nonblocking_fds() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    b.setblocking(False)
    c = Counters()
    assert read_ready(b.fileno(), 10, c) == []
    writable = select.poll()
    writable.register(a.fileno(), select.POLLOUT)
    for n in range(5):
        write_wait(a.fileno(), bytes([n]) * 10, c, writable)
    assert read_ready(b.fileno(), 3, c) == [bytes([n]) * 10 for n in range(3)]
    assert read_ready(b.fileno(), 10, c) == [bytes([n]) * 10 for n in (3, 4)]
    assert c.packets == 5 and c.bytes == 50 and c.read_errors == 0
    a.close()
    b.close()


def test_framed_split_stream_coalesces_a_whole_batch(engine: Engine) -> None:
    """The framed codec reads every waiting frame into one batch, so the reads of two
    interleaved flows leave as one frame per flow."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b, c, d):
        s.setblocking(False)
    f1, f2 = flow_reads(1, 3), flow_reads(2, 3)
    for frame in (f1[0], f2[0], f1[1], f2[1], f1[2], f2[2]):
        a.send(frame)
    counters = Counters()
    codec = TunCodec(SplitRelay(1500, engine.name))

    async def main() -> None:
        src = Framed(b.fileno(), codec, counters)
        dst = Framed(c.fileno(), codec, counters)
        with trio.move_on_after(1):
            await src.forward_to(dst)

    trio.run(main)
    got = []
    while True:
        try:
            got.append(d.recv(70000))
        except BlockingIOError:
            break
    assert len(got) == 2 and counters.batch_sizes == {"4-7": 1}
    # each packet's flag travelled with it: the split's checksums were not summed again
    assert counters.gro.csum_trusted == 18 and counters.gro.csum_verified == 0
    assert got[0][50:] == b"".join(r[50:] for r in f1)
    for s in (a, b, c, d):
        s.close()


@pytest.mark.parametrize("batch", [1, 3])
def test_framed_batch_bound(engine: Engine, batch: int) -> None:
    """--batch bounds how many waiting frames one decode takes."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    b.setblocking(False)
    for frame in flow_reads(1, 6):
        a.send(frame)
    counters = Counters()
    src = Framed(b.fileno(), TunCodec(SplitRelay(1500, engine.name, batch=batch)), counters)

    async def main() -> None:
        for _ in range(18):  # 6 reads x 3 segments
            await src.__anext__()

    trio.run(main)
    assert counters.batches == 6 // batch and counters.segments_in == 18
    a.close()
    b.close()
