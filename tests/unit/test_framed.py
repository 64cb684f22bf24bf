"""The framed stream over a packet-preserving socketpair (no TUN device needed)."""

from __future__ import annotations

import os
import socket

import trio

from forwarders.counters import Counters
from forwarders.framed import Framed, TunCodec


def test_framed_round_trip_keeps_packet_boundaries_and_order() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b, c, d):
        s.setblocking(False)
    packets = [os.urandom(n) for n in (20, 1500, 9000, 1)]
    for p in packets:
        a.send(p)
    counters = Counters()

    async def main() -> None:
        src = Framed(b.fileno(), TunCodec(None), counters)
        dst = Framed(c.fileno(), TunCodec(None), counters)
        with trio.move_on_after(2):
            await src.forward_to(dst)

    trio.run(main)
    got = []
    while True:
        try:
            got.append(d.recv(65536))
        except BlockingIOError:
            break
    assert got == packets
    assert counters.packets == len(packets)
    assert counters.bytes == sum(map(len, packets))
    for s in (a, b, c, d):
        s.close()
