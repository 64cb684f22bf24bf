"""Tests for tunio.offload: header codec, checksums, GSO split and GRO coalescing.

Packets are built here from scratch and checked with a deliberately naive word-by-word
checksum, so the module's fast arithmetic is never used to check itself.
"""

from __future__ import annotations

import random
import struct
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunio.offload import (
    MAX_SEGMENTS,
    VIRTIO_NET_HDR_F_DATA_VALID,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VNET_HDR_LEN,
    CoalesceStats,
    OffloadError,
    VirtioNetHdr,
    checksum,
    fold16,
    gro_coalesce,
    gso_split,
    pseudo_header_sum,
    sum16,
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


# --------------------------------------------------------------------------- header


U16 = st.integers(0, 0xFFFF)


@FAST
@given(st.builds(VirtioNetHdr, st.integers(0, 255), st.integers(0, 255), U16, U16, U16, U16))
def test_vnet_hdr_round_trip(hdr: VirtioNetHdr) -> None:
    raw = hdr.pack()
    assert len(raw) == VNET_HDR_LEN
    assert VirtioNetHdr.unpack(raw) == hdr
    assert VirtioNetHdr.unpack(memoryview(raw + b"\xee" * 5)) == hdr
    assert VirtioNetHdr.unpack(bytearray(raw)) == hdr


def test_vnet_hdr_layout_is_little_endian() -> None:
    # what a TCP bulk read looked like on 6.18 (KERNEL-NOTES §2.4)
    hdr = VirtioNetHdr(1, 1, 52, 1448, 20, 16)
    assert hdr.pack() == bytes([1, 1, 52, 0, 0xA8, 0x05, 20, 0, 16, 0])


@pytest.mark.parametrize("n", range(VNET_HDR_LEN))
def test_vnet_hdr_truncated(n: int) -> None:
    with pytest.raises(OffloadError):
        VirtioNetHdr.unpack(bytes(n))


@pytest.mark.parametrize("fields", [(256, 0, 0, 0, 0, 0), (0, 0, 0, 0x10000, 0, 0), (-1,)])
def test_vnet_hdr_pack_out_of_range(fields: tuple[int, ...]) -> None:
    with pytest.raises(OffloadError):
        VirtioNetHdr(*fields).pack()


# --------------------------------------------------------------------------- checksums

EDGE_DATA = [
    b"",
    b"\x00",
    b"\xff",
    b"\xff\xff",
    b"\xff" * 7,
    b"\x00" * 6,
    b"\xff\xff" * 3 + b"\x00",
]


@FAST
@given(st.binary(max_size=600) | st.sampled_from(EDGE_DATA), st.integers(0, 0xFFFF))
def test_checksum_matches_reference(data: bytes, initial: int) -> None:
    assert checksum(data) == ref_checksum(data)
    assert checksum(data, initial) == ref_checksum(data, initial)
    assert checksum(memoryview(data), initial) == ref_checksum(data, initial)
    assert sum16(bytearray(data), initial) == ref_sum(data, initial)


@settings(database=None, deadline=None, max_examples=60)
@given(st.integers(2000, 70000), st.integers(0, 2**32), st.integers(0, 0xFFFF))
def test_checksum_large_buffers(n: int, seed: int, initial: int) -> None:
    """Buffers above the chunking threshold (odd and even lengths) give the same result."""
    data = random.Random(seed).randbytes(n)
    assert checksum(data, initial) == ref_checksum(data, initial)
    assert checksum(memoryview(data)[1:]) == ref_checksum(data[1:])


def test_checksum_large_all_ones() -> None:
    for n in (4096, 4097, 65535, 65536):
        data = b"\xff" * n
        assert checksum(data) == ref_checksum(data)
        assert checksum(bytes(n)) == 0xFFFF


@FAST
@given(st.binary(max_size=64), st.integers(0, 2**40))
def test_checksum_unfolded_initial(data: bytes, initial: int) -> None:
    assert checksum(data, initial) == ref_checksum(data, initial)


@FAST
@given(st.integers(0, 2**64))
def test_fold16_matches_end_around_carry(total: int) -> None:
    assert fold16(total) == ref_sum(b"", total)


def test_checksum_edge_cases() -> None:
    assert checksum(b"") == 0xFFFF
    assert checksum(b"\xff\xff") == 0  # sum 0xFFFF, not 0
    assert checksum(b"\xff\xff" * 1000) == 0
    assert checksum(b"\x00\x01\xff\xfe") == 0
    assert checksum(b"\x01") == 0xFEFF  # odd byte padded on the right
    # RFC 1071 section 3 example
    assert sum16(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2


def test_checksum_validates_itself() -> None:
    data = bytearray(random.Random(1).randbytes(300)) + b"\0\0"
    data[-2:] = checksum(data).to_bytes(2, "big")
    assert checksum(data) == 0


@FAST
@given(
    st.sampled_from([4, 16]).flatmap(
        lambda n: st.tuples(st.binary(min_size=n, max_size=n), st.binary(min_size=n, max_size=n))
    ),
    st.sampled_from([TCP, UDP]),
    st.integers(0, 0xFFFF),
)
def test_pseudo_header_sum(ad: tuple[bytes, bytes], proto: int, length: int) -> None:
    src, dst = ad
    assert pseudo_header_sum(src, dst, proto, length) == ref_sum(
        ref_pseudo(src, dst, proto, length)
    )


def test_pseudo_header_sum_bad_addresses() -> None:
    with pytest.raises(OffloadError):
        pseudo_header_sum(V4_SRC, V6_DST, TCP, 20)
    with pytest.raises(OffloadError):
        pseudo_header_sum(b"\0" * 5, b"\0" * 5, TCP, 20)


# --------------------------------------------------------------------------- gso_split


@SLOW
@given(super_packets())
def test_split_then_coalesce_round_trip(case: tuple[VirtioNetHdr, bytes]) -> None:
    hdr, pkt = case
    segs = gso_split(pkt, hdr, mtu=65535)
    check_segments(pkt, hdr, segs)
    frames = gro_coalesce(segs)
    if len(segs) == 1:
        assert frames == [(VirtioNetHdr(), segs[0])]
        return
    assert len(frames) == 1
    mhdr, merged = frames[0]
    assert merged == pkt  # identical, including the partial checksum and IPv4 header
    assert mhdr == VirtioNetHdr(
        NEEDS, hdr.gso_type, hdr.hdr_len, hdr.gso_size, hdr.csum_start, hdr.csum_offset
    )
    assert gso_split(merged, mhdr, mtu=65535) == segs


@pytest.mark.parametrize("v6", [False, True])
def test_split_64k_tcp(v6: bool) -> None:
    # the shape of a real read: 12 bytes of TCP options, 45 x 1448 bytes of payload
    payload = random.Random(2).randbytes(45 * 1448 - (20 if v6 else 0))
    opts = bytes.fromhex("0101080a0001e24000000a1b")
    hdr, pkt = super_packet(payload, 1448, v6=v6, options=opts, flags=ACK | PSH, seq=2**32 - 5000)
    mtu = 1500 if not v6 else 1520
    segs = gso_split(pkt, hdr, mtu=mtu)
    assert len(segs) == 45
    assert all(len(s) == (1500 if not v6 else 1520) for s in segs[:-1])
    check_segments(pkt, hdr, segs)
    assert sum(1 for s in segs if s[hdr.csum_start + 13] & PSH) == 1
    assert gro_coalesce(segs)[0][1] == pkt
    with pytest.raises(OffloadError, match="mtu"):
        gso_split(pkt, hdr, mtu=mtu - 1)


def test_split_fin_cwr_only_where_allowed() -> None:
    hdr, pkt = super_packet(bytes(3000), 1000, flags=ACK | PSH | FIN | CWR)
    segs = gso_split(pkt, hdr)
    assert [s[33] for s in segs] == [ACK | CWR, ACK, ACK | PSH | FIN]
    check_segments(pkt, hdr, segs)


def test_split_accepts_memoryview_and_no_needs_csum() -> None:
    hdr, pkt = super_packet(bytes(range(256)) * 10, 700, v6=True)
    plain = VirtioNetHdr(0, hdr.gso_type, 0, hdr.gso_size, 0, 0)  # no NEEDS_CSUM: offsets ignored
    buf = memoryview(b"\0" * VNET_HDR_LEN + pkt)
    assert gso_split(buf[VNET_HDR_LEN:], plain) == gso_split(pkt, hdr)


def test_split_ipv6_extension_header() -> None:
    _, pkt = super_packet(bytes(5000), 1200, v6=True)
    dest_opts = bytes([TCP, 0, 1, 4, 0, 0, 0, 0])  # next header TCP, 8 bytes, PadN
    ext = bytearray(pkt[:40] + dest_opts + pkt[40:])
    ext[6] = 60
    ext[4:6] = (len(ext) - 40).to_bytes(2, "big")
    ehdr = VirtioNetHdr(NEEDS, VIRTIO_NET_HDR_GSO_TCPV6, 0, 1200, 48, 16)
    segs = gso_split(bytes(ext), ehdr)
    assert len(segs) == 5
    for seg in segs:
        assert seg[40:48] == dest_opts
        assert struct.unpack_from("!H", seg, 4)[0] == len(seg) - 40
        assert l4_valid(seg, 48, TCP)
    assert b"".join(s[48 + 20 :] for s in segs) == bytes(5000)


@pytest.mark.parametrize("tcp", [True, False])
@pytest.mark.parametrize("v6", [False, True])
def test_split_none_completes_checksum(tcp: bool, v6: bool) -> None:
    pkt = make_pkt(b"hello world", v6=v6, tcp=tcp, partial=True)
    l4 = 40 if v6 else 20
    hdr = VirtioNetHdr(NEEDS, VIRTIO_NET_HDR_GSO_NONE, 0, 0, l4, 16 if tcp else 6)
    (out,) = gso_split(pkt, hdr)
    assert out == make_pkt(b"hello world", v6=v6, tcp=tcp)
    assert l4_valid(out, l4, TCP if tcp else UDP)
    # without NEEDS_CSUM (or with only DATA_VALID) the packet passes unchanged
    other = VirtioNetHdr(VIRTIO_NET_HDR_F_DATA_VALID)
    assert gso_split(memoryview(pkt), other) == [pkt]


def _udp_payload_with_zero_checksum(v6: bool) -> bytes:
    """A payload whose last word makes the UDP checksum come out as 0 (must be sent 0xFFFF)."""
    base = bytes(20)
    length = 8 + len(base) + 2
    src, dst = (V6_SRC, V6_DST) if v6 else (V4_SRC, V4_DST)
    hdr = struct.pack("!HHHH", 40000, 5201, length, 0)
    s = ref_sum(ref_pseudo(src, dst, UDP, length) + hdr + base)
    return base + (0xFFFF - s).to_bytes(2, "big")


@pytest.mark.parametrize("v6", [False, True])
def test_udp_zero_checksum_sent_as_ffff(v6: bool) -> None:
    payload = _udp_payload_with_zero_checksum(v6)
    l4 = 40 if v6 else 20
    pkt = make_pkt(payload, v6=v6, tcp=False, partial=True)
    (out,) = gso_split(pkt, VirtioNetHdr(NEEDS, 0, 0, 0, l4, 6))
    assert out[l4 + 6 : l4 + 8] == b"\xff\xff"
    # the same datagram as the last segment of a UDP_L4 super-packet
    hdr, sp = super_packet(bytes(100) + payload, 100, v6=v6, tcp=False)
    segs = gso_split(sp, hdr)
    check_segments(sp, hdr, segs)
    assert segs[1][l4 + 6 : l4 + 8] == b"\xff\xff"


@pytest.mark.parametrize("gso_type", [VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP_L4])
def test_split_too_many_segments(gso_type: int) -> None:
    tcp = gso_type == VIRTIO_NET_HDR_GSO_TCPV4
    hdr, pkt = super_packet(bytes(MAX_SEGMENTS * 10), 10, tcp=tcp)
    assert len(gso_split(pkt, hdr)) == MAX_SEGMENTS
    hdr, pkt = super_packet(bytes(MAX_SEGMENTS * 10 + 1), 10, tcp=tcp)
    with pytest.raises(OffloadError, match="segments"):
        gso_split(pkt, hdr)


def _set(pkt: bytes, off: int, value: bytes) -> bytes:
    return pkt[:off] + value + pkt[off + len(value) :]


V4_HDR, V4_PKT = super_packet(bytes(4000), 1000)
V6_HDR, V6_PKT = super_packet(bytes(4000), 1000, v6=True)
U4_HDR, U4_PKT = super_packet(bytes(4000), 1000, tcp=False)


def _hdr(base: VirtioNetHdr, **changes: int) -> VirtioNetHdr:
    fields = {
        "flags": base.flags,
        "gso_type": base.gso_type,
        "hdr_len": base.hdr_len,
        "gso_size": base.gso_size,
        "csum_start": base.csum_start,
        "csum_offset": base.csum_offset,
    }
    fields.update(changes)
    return VirtioNetHdr(**fields)


MALFORMED = {
    "empty": (b"", V4_HDR),
    "empty-none": (b"", VirtioNetHdr()),
    "truncated-ip": (V4_PKT[:19], V4_HDR),
    "truncated-tcp": (V4_PKT[:30], V4_HDR),
    "truncated-tcp-options": (_set(V4_PKT, 32, b"\xf0")[:50], V4_HDR),
    "truncated-udp": (U4_PKT[:25], U4_HDR),
    "truncated-ipv6": (V6_PKT[:39], V6_HDR),
    "ihl-4": (_set(V4_PKT, 0, b"\x44"), V4_HDR),
    "ihl-past-end": (_set(V4_PKT, 0, b"\x4f")[:50], V4_HDR),
    "tcp-doff-16": (_set(V4_PKT, 32, b"\x40"), V4_HDR),
    "tcp-doff-0": (_set(V4_PKT, 32, b"\x00"), V4_HDR),
    "gso-type-2": (V4_PKT, _hdr(V4_HDR, gso_type=2)),
    "gso-type-7": (V4_PKT, _hdr(V4_HDR, gso_type=7)),
    "gso-type-udp-ufo": (U4_PKT, _hdr(U4_HDR, gso_type=VIRTIO_NET_HDR_GSO_UDP)),
    "gso-size-0": (V4_PKT, _hdr(V4_HDR, gso_size=0)),
    "gso-size-ffff": (V4_PKT, _hdr(V4_HDR, gso_size=0xFFFF)),
    "ecn-bit": (V4_PKT, _hdr(V4_HDR, gso_type=VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN)),
    "ipv6-as-tcpv4": (V6_PKT, _hdr(V6_HDR, gso_type=VIRTIO_NET_HDR_GSO_TCPV4)),
    "ipv4-as-tcpv6": (V4_PKT, _hdr(V4_HDR, gso_type=VIRTIO_NET_HDR_GSO_TCPV6)),
    "version-5": (_set(V4_PKT, 0, b"\x55"), _hdr(V4_HDR, gso_type=VIRTIO_NET_HDR_GSO_UDP_L4)),
    "udp-as-tcp": (U4_PKT, _hdr(U4_HDR, gso_type=VIRTIO_NET_HDR_GSO_TCPV4, csum_offset=16)),
    "tcp-as-udp": (V4_PKT, _hdr(V4_HDR, gso_type=VIRTIO_NET_HDR_GSO_UDP_L4, csum_offset=6)),
    "csum-start-10": (V4_PKT, _hdr(V4_HDR, csum_start=10)),
    "csum-start-past-end": (V4_PKT, _hdr(V4_HDR, csum_start=5000)),
    "csum-offset-6-tcp": (V4_PKT, _hdr(V4_HDR, csum_offset=6)),
    "none-csum-start-past-end": (V4_PKT, VirtioNetHdr(NEEDS, 0, 0, 0, len(V4_PKT), 16)),
    "none-csum-offset-past-end": (V4_PKT[:40], VirtioNetHdr(NEEDS, 0, 0, 0, 20, 19)),
    "ipv4-fragment": (_set(V4_PKT, 6, b"\x20"), V4_HDR),
    "ipv6-ext-truncated": (_set(V6_PKT, 6, b"\x00")[:44], V6_HDR),
    "ipv6-fragment-header": (_set(V6_PKT, 6, b"\x2c"), V6_HDR),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_split_malformed(name: str) -> None:
    pkt, hdr = MALFORMED[name]
    with pytest.raises(OffloadError):
        gso_split(pkt, hdr)


def test_split_ipv6_routing_header_rejected() -> None:
    routing = bytes([TCP, 0, 0, 1, 0, 0, 0, 0])  # type 0, segments left 1
    pkt = bytearray(V6_PKT[:40] + routing + V6_PKT[40:])
    pkt[6] = 43
    with pytest.raises(OffloadError, match="routing"):
        gso_split(bytes(pkt), _hdr(V6_HDR, csum_start=48))


@FAST
@given(
    st.binary(max_size=200),
    st.builds(
        VirtioNetHdr,
        st.integers(0, 255),
        st.sampled_from([0, 1, 2, 3, 4, 5, 7, 0x81, 0x84, 0x85]) | st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.integers(0, 80) | st.integers(0, 0xFFFF),
        st.integers(0, 80),
        st.integers(0, 20),
    ),
)
def test_split_random_input_only_offload_error(data: bytes, hdr: VirtioNetHdr) -> None:
    try:
        out = gso_split(data, hdr)
    except OffloadError:
        return
    assert isinstance(out, list)
    assert all(isinstance(s, bytes) for s in out)


@FAST
@given(
    st.sampled_from([(V4_HDR, V4_PKT), (V6_HDR, V6_PKT), (U4_HDR, U4_PKT)]),
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=6),
    st.integers(0, 4100),
    st.integers(0, 2500),
)
def test_split_mutated_input_only_offload_error(
    case: tuple[VirtioNetHdr, bytes], edits: list[tuple[int, int]], cut: int, gso: int
) -> None:
    hdr, pkt = case
    buf = bytearray(pkt[:cut])
    for pos, val in edits:
        if pos < len(buf):
            buf[pos] = val
    try:
        out = gso_split(bytes(buf), _hdr(hdr, gso_size=gso), mtu=65535)
    except OffloadError:
        return
    assert all(isinstance(s, bytes) for s in out)


# --------------------------------------------------------------------------- gro_coalesce


def seq_pkts(sizes: list[int], seq: int = 1000, **kw: Any) -> list[bytes]:
    """Consecutive segments of one flow (sequence numbers and IPv4 IDs continue)."""
    out = []
    ident = int(kw.pop("ident", 100))
    for i, n in enumerate(sizes):
        out.append(make_pkt(bytes([i]) * n, seq=seq, ident=ident + i, **kw))
        seq += n
    return out


def assert_unchanged(pkts: list[bytes], frames: list[tuple[VirtioNetHdr, bytes]]) -> None:
    assert frames == [(VirtioNetHdr(), p) for p in pkts]


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("tcp", [True, False])
def test_coalesce_basic(v6: bool, tcp: bool) -> None:
    pkts = seq_pkts([100, 100, 100, 40], v6=v6, tcp=tcp, options=b"\x01" * 4 if tcp else b"")
    stats = CoalesceStats()
    ((hdr, frame),) = gro_coalesce(pkts, stats=stats)
    l4 = 40 if v6 else 20
    hlen = l4 + (24 if tcp else 8)
    assert hdr == VirtioNetHdr(
        NEEDS,
        (VIRTIO_NET_HDR_GSO_TCPV6 if v6 else VIRTIO_NET_HDR_GSO_TCPV4)
        if tcp
        else VIRTIO_NET_HDR_GSO_UDP_L4,
        hlen,
        100,
        l4,
        16 if tcp else 6,
    )
    assert len(frame) == hlen + 340
    assert frame[hlen:] == b"".join(p[hlen:] for p in pkts)
    cpos = l4 + (16 if tcp else 6)
    src, dst = addrs(frame)
    partial = ref_sum(ref_pseudo(src, dst, TCP if tcp else UDP, len(frame) - l4))
    assert struct.unpack_from("!H", frame, cpos)[0] == partial
    if not v6:
        assert ref_sum(frame[:20]) == 0xFFFF
    assert gso_split(frame, hdr) == pkts
    assert stats == CoalesceStats(4, 1, 3, 1, 0)
    gro_coalesce(pkts, stats=stats)
    assert stats.packets_in == 8 and stats.merged == 6


def test_coalesce_kernel_write_rules() -> None:
    """Merged headers satisfy the checks of tun_vnet_hdr_get / virtio_net_hdr_to_skb (§2.5)."""
    pkts = seq_pkts([1448] * 45, options=b"\x01\x01\x08\x0a" + bytes(8))
    ((hdr, frame),) = gro_coalesce(pkts)
    assert len(frame) <= 65535
    assert hdr.csum_start + hdr.csum_offset + 2 <= hdr.hdr_len <= len(frame)
    assert hdr.csum_start >= 20 and hdr.csum_offset == 16
    assert 0 < hdr.gso_size < 0xFFFF


def test_coalesce_different_flows_interleaved() -> None:
    a = seq_pkts([100] * 3, sport=1)
    b = seq_pkts([100] * 3, sport=2)
    frames = gro_coalesce([a[0], b[0], a[1], b[1], a[2], b[2]])
    assert len(frames) == 2
    assert gso_split(frames[0][1], frames[0][0]) == a
    assert gso_split(frames[1][1], frames[1][0]) == b


def test_coalesce_never_mixes_flows() -> None:
    pkts = [
        make_pkt(bytes(100), seq=1000, sport=1),
        make_pkt(bytes(100), seq=1100, sport=2),
        make_pkt(bytes(100), seq=1100, dport=3),
        make_pkt(bytes(100), seq=1100, v6=True),
        make_pkt(bytes(100), seq=1100, tcp=False),
    ]
    assert_unchanged(pkts, gro_coalesce(pkts))


@pytest.mark.parametrize(
    ("name", "second"),
    [
        ("ack", {"ack": 5001}),
        ("gap", {"seq": 1200}),
        ("overlap", {"seq": 1050}),
        ("before", {"seq": 900}),
        ("ttl", {"ttl": 63}),
        ("tos", {"tos": 4}),
        ("df", {"frag": 0}),
        ("window", {"window": 1000}),
        ("options", {"options": b"\x01\x01\x01\x00"}),
        ("syn", {"flags": SYN | ACK}),
        ("fin", {"flags": FIN | ACK}),
        ("rst", {"flags": RST | ACK}),
        ("urg", {"flags": URG | ACK}),
        ("cwr", {"flags": CWR | ACK}),
        ("no-ack", {"flags": PSH}),
        ("bigger", {"payload": 101}),
        ("empty", {"payload": 0}),
        ("bad-csum", {"bad_csum": True}),
        ("ip-options", {"ip_options": b"\x01\x01\x01\x00"}),
        ("mf", {"frag": 0x2000}),
    ],
)
def test_coalesce_refuses(name: str, second: dict[str, Any]) -> None:
    kw: dict[str, Any] = {"options": b"\x01\x01\x01\x01"} if name == "options" else {}
    first = make_pkt(bytes(100), seq=1000, **kw)
    second = dict(second)
    size = int(second.pop("payload", 100))
    pkts = [first, make_pkt(bytes(size), **{"seq": 1100, **second})]
    assert_unchanged(pkts, gro_coalesce(pkts))


@pytest.mark.parametrize("v6", [False, True])
def test_coalesce_refuses_first_packet_flaws(v6: bool) -> None:
    flaws: list[dict[str, Any]] = [{"bad_csum": True}, {"flags": ACK | PSH}, {"flags": ACK | FIN}]
    for kw in flaws:
        pkts = [
            make_pkt(bytes(100), seq=1000, v6=v6, **kw),
            make_pkt(bytes(100), seq=1100, v6=v6),
        ]
        assert_unchanged(pkts, gro_coalesce(pkts))


def test_coalesce_bad_checksum_counted_and_verify_off() -> None:
    good = seq_pkts([100] * 3)
    bad = make_pkt(bytes([1]) * 100, seq=1100, ident=101, bad_csum=True)
    pkts = [good[0], bad, good[2]]
    stats = CoalesceStats()
    assert_unchanged(pkts, gro_coalesce(pkts, stats=stats))
    assert stats.bad_csum == 1 and stats.merged == 0
    # verify=False trusts the caller: the corrupt packet is merged (the kernel would then
    # compute a fresh checksum over it), which is why verification is the default
    ((hdr, frame),) = gro_coalesce(pkts, verify=False)
    assert hdr.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 and len(frame) == 340


def test_coalesce_ipv4_options_and_fragments_never_merge() -> None:
    opt = b"\x01\x01\x01\x00"
    pkts = seq_pkts([100] * 3, ip_options=opt)
    assert_unchanged(pkts, gro_coalesce(pkts))
    frags = [make_pkt(bytes(100), seq=1000, frag=0x2000), make_pkt(bytes(100), frag=0x200)]
    assert_unchanged(frags, gro_coalesce(frags))


def test_coalesce_stops_after_short_segment() -> None:
    pkts = seq_pkts([100, 50, 100])
    frames = gro_coalesce(pkts)
    assert len(frames) == 2
    assert frames[0][0].gso_size == 100 and len(frames[0][1]) == 40 + 150
    assert frames[1] == (VirtioNetHdr(), pkts[2])


def test_coalesce_stops_after_psh() -> None:
    pkts = seq_pkts([100, 100, 100])
    pkts[1] = make_pkt(bytes([1]) * 100, seq=1100, ident=101, flags=ACK | PSH)
    frames = gro_coalesce(pkts)
    assert len(frames) == 2
    assert frames[0][1][33] == ACK | PSH
    assert gso_split(frames[0][1], frames[0][0]) == pkts[:2]
    assert frames[1] == (VirtioNetHdr(), pkts[2])


def test_coalesce_udp_flag_and_short_datagram() -> None:
    pkts = seq_pkts([200, 200, 10, 200], tcp=False)
    assert_unchanged(pkts, gro_coalesce(pkts, udp=False))
    frames = gro_coalesce(pkts)
    assert [len(f) for _, f in frames] == [28 + 410, 228]


def test_coalesce_max_size_and_segment_limit() -> None:
    pkts = seq_pkts([1000] * 10)
    frames = gro_coalesce(pkts, max_size=40 + 3000)
    assert [len(f) for _, f in frames] == [3040, 3040, 3040, 1040]
    many = seq_pkts([1] * (MAX_SEGMENTS + 5))
    frames = gro_coalesce(many)
    assert [len(f) for _, f in frames] == [40 + MAX_SEGMENTS, 40 + 5]


def test_coalesce_non_candidate_keeps_flow_order() -> None:
    a = seq_pkts([100] * 4)
    fin = make_pkt(b"", seq=1200, flags=ACK | FIN)
    pkts = [a[0], a[1], fin, a[2], a[3]]
    frames = gro_coalesce(pkts)
    assert [f for _, f in frames][1] == fin
    assert len(frames) == 3


def test_coalesce_garbage_passes_through() -> None:
    pkts = [b"", b"\x45", bytes(27), bytes(100), b"\x60" + bytes(60), b"\xff" * 80]
    assert_unchanged(pkts, gro_coalesce(pkts))


@FAST
@given(st.lists(st.binary(max_size=120), max_size=8))
def test_coalesce_random_bytes_never_raises(pkts: list[bytes]) -> None:
    frames = gro_coalesce(pkts)
    for hdr, frame in frames:
        assert hdr == VirtioNetHdr() and frame in pkts


@st.composite
def batches(draw: st.DrawFn) -> list[bytes]:
    """Several flows, each a run of segments with occasional oddities, randomly interleaved."""
    flows: list[list[bytes]] = []
    for f in range(draw(st.integers(1, 4))):
        v6, tcp = draw(st.booleans()), draw(st.booleans())
        size = draw(st.integers(1, 300))
        seq, ack, ttl = draw(st.integers(0, 2**32 - 1)), 1, 64
        pkts: list[bytes] = []
        for ident in range(draw(st.integers(1, 12))):
            kind = draw(st.sampled_from(["seg"] * 6 + ["short", "big", "psh", "fin", "ack", "ttl"]))
            n = {"short": max(0, size - 7), "big": size + 3}.get(kind, size)
            flags = {"psh": ACK | PSH, "fin": ACK | FIN}.get(kind, ACK)
            ack += kind == "ack"
            ttl -= kind == "ttl"
            pkts.append(
                make_pkt(
                    bytes([len(pkts)]) * n,
                    v6=v6,
                    tcp=tcp,
                    seq=seq,
                    ack=ack,
                    ttl=ttl,
                    flags=flags,
                    ident=ident,
                    sport=f,
                )
            )
            seq = (seq + n) & 0xFFFFFFFF
        flows.append(pkts)
    order = draw(st.permutations([i for i, p in enumerate(flows) for _ in p]))
    pos = [0] * len(flows)
    batch = []
    for i in order:
        batch.append(flows[i][pos[i]])
        pos[i] += 1
    return batch


def _flow(pkt: bytes) -> tuple[bytes, ...]:
    l4 = 40 if pkt[0] >> 4 == 6 else 20
    return (*addrs(pkt), pkt[l4 : l4 + 4], bytes([pkt[0] >> 4]))


@SLOW
@given(batches())
def test_coalesce_then_split_restores_every_flow(batch: list[bytes]) -> None:
    frames = gro_coalesce(batch)
    assert len(frames) <= len(batch)
    expanded: list[bytes] = []
    for hdr, frame in frames:
        if hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE:
            assert hdr == VirtioNetHdr()
            expanded.append(frame)
            continue
        assert hdr.flags == NEEDS and hdr.hdr_len <= len(frame) <= 65535
        assert len(frame) - hdr.hdr_len > hdr.gso_size
        expanded.extend(gso_split(frame, hdr, mtu=65535))
    per_flow_in: dict[tuple[bytes, ...], list[bytes]] = defaultdict(list)
    per_flow_out: dict[tuple[bytes, ...], list[bytes]] = defaultdict(list)
    for p in batch:
        per_flow_in[_flow(p)].append(p)
    for p in expanded:
        per_flow_out[_flow(p)].append(p)
    assert per_flow_out == per_flow_in
