"""Forwarders survive malformed traffic: garbage, truncated, bad vnet headers, oversize.

Frames are injected from inside the ``-a`` namespace with an AF_PACKET socket on tun11,
so the forwarder reads them exactly as the kernel hands them over; with PACKET_VNET_HDR
the test also supplies virtio_net_hdr fields of its own. Afterwards the forwarder must
still be running and forwarding (ping), and must have counted drops.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from pathlib import Path

import pytest
from pyroute2 import netns

from tunbench.cell.options import CellOptions
from tunbench.cell.session import Cell
from tunbench.cell.variants import VARIANTS, parse_spec
from tunbench.load import ping
from tunio.engine import ENGINES
from tunio.vnethdr import VirtioNetHdr

from engines import with_engine_marks

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

ETH_P_IP = 0x0800
PACKET_VNET_HDR = 15
SOL_PACKET = 263
# the split rows with both offload engines: malformed input must never crash the native one
SPECS = sorted(VARIANTS) + [
    f"{v} --gso split --engine {e}" for v in sorted(VARIANTS) if VARIANTS[v].gso for e in ENGINES
]


def ipv4(payload: bytes, proto: int = 17, total: int | None = None, ihl: int = 5) -> bytes:
    length = total if total is not None else 20 + len(payload)
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        length,
        1,
        0,
        64,
        proto,
        0,
        socket.inet_aton("10.0.1.1"),
        socket.inet_aton("10.0.2.1"),
    )
    return head + payload


PLAIN_FRAMES = [
    b"\x00" * 40,  # first nibble 0: not IP
    b"\x45\x00",  # truncated IPv4 header
    b"\x60" + b"\x00" * 10,  # truncated IPv6 header
    ipv4(b"x" * 30, total=9000),  # total length beyond the packet
    ipv4(b"x" * 30, ihl=15),  # IHL past the end
    ipv4(b"\xff" * 8, proto=6),  # TCP header cut short
    os.urandom(1400),
]
VNET_FRAMES = [  # (header, packet): header fields that lie about the packet
    (VirtioNetHdr(1, 1, 40, 1000, 20, 16), ipv4(os.urandom(3000), proto=6)),  # TCPV4, junk TCP
    (VirtioNetHdr(1, 5, 28, 500, 20, 6), ipv4(os.urandom(4000), proto=17)),  # USO, junk UDP
    (VirtioNetHdr(1, 4, 60, 1200, 20, 16), ipv4(os.urandom(5000), proto=6)),  # TCPV6 on v4
    (VirtioNetHdr(0, 1, 0, 1448, 0, 0), ipv4(os.urandom(20000), proto=6)),  # oversize GSO
]


def inject(ns: str, ifname: str) -> int:
    """Send every frame from inside ``ns``; returns how many the kernel accepted."""
    sent = [0]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            netns.setns(ns, flags=0)
            plain = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            vnet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            vnet.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            for _ in range(20):
                for frame in PLAIN_FRAMES:
                    with contextlib.suppress(OSError):
                        plain.sendto(frame, (ifname, ETH_P_IP))
                        sent[0] += 1
                for hdr, pkt in VNET_FRAMES:
                    with contextlib.suppress(OSError):
                        vnet.sendto(hdr.pack() + pkt, (ifname, ETH_P_IP))
                        sent[0] += 1
            plain.close()
            vnet.close()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join(30)
    assert not errors, errors
    return sent[0]


@pytest.mark.parametrize("spec", with_engine_marks(SPECS))
def test_forwarder_survives_malformed_frames(spec: str, tmp_path: Path) -> None:
    c = Cell(parse_spec(spec), CellOptions(results_dir=tmp_path))
    with c.up():
        accepted = inject(c.topo.ns_a, c.opts.iface1)
        assert accepted >= 20 * len(PLAIN_FRAMES)
        out = tmp_path / "ping.json"
        argv = ping.argv(c.opts.ip2, ping.CHECK_COUNT, ping.CHECK_INTERVAL, out)
        pinger = c.spawn("ping", argv, c.topo.ns_a)
        c.wait_child(pinger, 10, "ping")
        res = ping.parse(out)
        c.check_forwarder("after malformed traffic")
        stats = c.forwarder_stats()
    assert res.received == res.sent == ping.CHECK_COUNT, "the forwarder stopped forwarding"
    assert stats is not None
    d = stats["directions"]["1to2"]
    counted = d["drops"] + d["malformed"] + sum(d["write_errors"].values())
    assert counted >= 20, d
