"""Packets built from scratch for the tunio tests, and a naive reference checksum.

The checksum here goes word by word, as RFC 1071 describes it, so the fast arithmetic in
:mod:`tunio.csum` is never used to check itself. Shared by test_csum.py, test_gsosplit.py,
test_grocoalesce.py and test_vnethdr.py.
"""

from __future__ import annotations

import random
import struct
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tunio.vnethdr import (
    MAX_SEGMENTS,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VirtioNetHdr,
)

# No example database: do not write .hypothesis/ into the shared tree; no deadline (CI noise).
FAST = settings(database=None, deadline=None, max_examples=150)
SLOW = settings(
    database=None, deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)

FIN, SYN, RST, PSH, ACK, URG, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x80
TCP, UDP = 6, 17
NEEDS = VIRTIO_NET_HDR_F_NEEDS_CSUM
V4_SRC, V4_DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
V6_SRC = bytes.fromhex("fd000000000000000000000000000001")
V6_DST = bytes.fromhex("fd0000000000000000000000000000ff")


# --------------------------------------------------------------------------- reference


def ref_sum(data: bytes, initial: int = 0) -> int:
    """One word at a time with end-around carry, as RFC 1071 describes it."""
    s = initial
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    if len(data) % 2:
        data += b"\0"
    for i in range(0, len(data), 2):
        s += data[i] << 8 | data[i + 1]
        if s > 0xFFFF:
            s -= 0xFFFF
    return s


def ref_checksum(data: bytes, initial: int = 0) -> int:
    return ~ref_sum(data, initial) & 0xFFFF


def ref_pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + bytes([0, proto]) + length.to_bytes(2, "big")
    return src + dst + length.to_bytes(4, "big") + bytes([0, 0, 0, proto])


def addrs(pkt: bytes) -> tuple[bytes, bytes]:
    return (pkt[12:16], pkt[16:20]) if pkt[0] >> 4 == 4 else (pkt[8:24], pkt[24:40])


def l4_valid(pkt: bytes, l4: int, proto: int) -> bool:
    src, dst = addrs(pkt)
    return ref_sum(ref_pseudo(src, dst, proto, len(pkt) - l4) + pkt[l4:]) == 0xFFFF


# --------------------------------------------------------------------------- builders


def make_pkt(
    payload: bytes,
    *,
    v6: bool = False,
    tcp: bool = True,
    seq: int = 1000,
    ack: int = 5000,
    flags: int = ACK,
    sport: int = 40000,
    dport: int = 5201,
    ident: int = 0x1234,
    ttl: int = 64,
    tos: int = 0,
    frag: int = 0x4000,
    window: int = 502,
    options: bytes = b"",
    ip_options: bytes = b"",
    flow_label: int = 0,
    partial: bool = False,
    bad_csum: bool = False,
) -> bytes:
    """A TCP or UDP packet. ``partial``: checksum field = folded pseudo-header sum (kernel
    CHECKSUM_PARTIAL), else a full valid checksum (``bad_csum`` flips one bit of it)."""
    proto = TCP if tcp else UDP
    if tcp:
        doff = (20 + len(options)) // 4
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, window, 0, 0)
        l4 += options + payload
        cpos = 16
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        cpos = 6
    src, dst = (V6_SRC, V6_DST) if v6 else (V4_SRC, V4_DST)
    pseudo = ref_pseudo(src, dst, proto, len(l4))
    if partial:
        csum = ref_sum(pseudo)
    else:
        csum = ref_checksum(pseudo + l4)
        if not tcp and csum == 0:
            csum = 0xFFFF
        if bad_csum:
            csum ^= 0x0100
    l4 = l4[:cpos] + csum.to_bytes(2, "big") + l4[cpos + 2 :]
    if v6:
        first = (6 << 28) | (tos << 20) | flow_label
        ip = struct.pack("!IHBB", first, len(l4), proto, ttl) + src + dst
    else:
        ihl = 5 + len(ip_options) // 4
        ip = struct.pack(
            "!BBHHHBBH", 0x40 | ihl, tos, ihl * 4 + len(l4), ident, frag, ttl, proto, 0
        )
        ip += src + dst + ip_options
        ip = ip[:10] + ref_checksum(ip).to_bytes(2, "big") + ip[12:]
    return ip + l4


def super_packet(payload: bytes, gso_size: int, **kw: Any) -> tuple[VirtioNetHdr, bytes]:
    """A GSO read as the kernel produces it: NEEDS_CSUM and the pseudo-header sum."""
    v6 = bool(kw.get("v6", False))
    tcp = bool(kw.get("tcp", True))
    pkt = make_pkt(payload, partial=True, **kw)
    l4 = 40 if v6 else 20
    hlen = l4 + ((pkt[l4 + 12] >> 4) * 4 if tcp else 8)
    gso_type = (
        (VIRTIO_NET_HDR_GSO_TCPV6 if v6 else VIRTIO_NET_HDR_GSO_TCPV4)
        if tcp
        else VIRTIO_NET_HDR_GSO_UDP_L4
    )
    return VirtioNetHdr(NEEDS, gso_type, hlen, gso_size, l4, 16 if tcp else 6), pkt


def check_segments(orig: bytes, hdr: VirtioNetHdr, segs: list[bytes]) -> None:
    """Every property a correct segmentation must have, checked against the original."""
    v6 = orig[0] >> 4 == 6
    l4 = hdr.csum_start
    tcp = hdr.gso_type != VIRTIO_NET_HDR_GSO_UDP_L4
    hlen = l4 + ((orig[l4 + 12] >> 4) * 4 if tcp else 8)
    g = hdr.gso_size
    payload = orig[hlen:]
    assert len(segs) == max(1, -(-len(payload) // g))
    assert b"".join(s[hlen:] for s in segs) == payload
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        assert seg[hlen:] == payload[i * g : (i + 1) * g]
        if v6:
            assert struct.unpack_from("!H", seg, 4)[0] == len(seg) - 40
            assert seg[:4] + seg[6:40] == orig[:4] + orig[6:40]
        else:
            assert struct.unpack_from("!H", seg, 2)[0] == len(seg)
            assert struct.unpack_from("!H", seg, 4)[0] == (orig[4] << 8 | orig[5]) + i & 0xFFFF
            assert ref_sum(seg[:20]) == 0xFFFF, "IPv4 header checksum"
            assert seg[:2] + seg[6:10] + seg[12:20] == orig[:2] + orig[6:10] + orig[12:20]
        assert l4_valid(seg, l4, TCP if tcp else UDP), f"L4 checksum of segment {i}"
        if tcp:
            seq0 = struct.unpack_from("!I", orig, l4 + 4)[0]
            assert struct.unpack_from("!I", seg, l4 + 4)[0] == (seq0 + i * g) & 0xFFFFFFFF
            want = orig[l4 + 13]
            if not last:
                want &= ~(FIN | PSH)
            if i:
                want &= ~CWR
            assert seg[l4 + 13] == want
            assert seg[l4 : l4 + 4] + seg[l4 + 8 : l4 + 13] + seg[l4 + 14 : l4 + 16] == (
                orig[l4 : l4 + 4] + orig[l4 + 8 : l4 + 13] + orig[l4 + 14 : l4 + 16]
            )
            assert seg[l4 + 18 : hlen] == orig[l4 + 18 : hlen]
        else:
            assert struct.unpack_from("!H", seg, l4 + 4)[0] == len(seg) - l4
            assert seg[l4 + 6 : l4 + 8] != b"\0\0", "UDP checksum 0 means none"
            assert seg[l4 : l4 + 4] == orig[l4 : l4 + 4]


@st.composite
def super_packets(draw: st.DrawFn, max_payload: int = 12000) -> tuple[VirtioNetHdr, bytes]:
    v6 = draw(st.booleans())
    tcp = draw(st.booleans())
    options = b""
    if tcp:
        options = draw(st.binary(max_size=40))
        options = options[: len(options) // 4 * 4]
    hlen = (40 if v6 else 20) + (20 + len(options) if tcp else 8)
    gso = draw(st.one_of(st.integers(1, 64), st.integers(500, 1500), st.integers(1, 9000)))
    top = min(gso * MAX_SEGMENTS, 65535 - hlen, max_payload)
    plen = draw(st.integers(min(gso + 1, top), top) | st.integers(0, top))
    payload = random.Random(draw(st.integers(0, 2**32))).randbytes(plen)
    kw: dict[str, Any] = {
        "v6": v6,
        "tcp": tcp,
        "seq": draw(st.integers(0, 2**32 - 1)),
        "ack": draw(st.integers(0, 2**32 - 1)),
        "flags": draw(st.sampled_from([ACK, ACK | PSH])),
        "ident": draw(st.integers(0, 0xFFFF)),
        "ttl": draw(st.integers(1, 255)),
        "tos": draw(st.integers(0, 255)),
        "frag": draw(st.sampled_from([0, 0x4000])),
        "window": draw(st.integers(0, 0xFFFF)),
        "flow_label": draw(st.integers(0, 0xFFFFF)),
        "sport": draw(st.integers(0, 0xFFFF)),
        "dport": draw(st.integers(0, 0xFFFF)),
        "options": options,
    }
    return super_packet(payload, gso, **kw)
