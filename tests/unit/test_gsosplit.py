"""Tests for GSO split: super-packets into plain packets (and back, whole).

Every test takes the ``engine`` fixture (tests/unit/conftest.py) and runs once per offload
engine: the pure tunio.gsosplit and the native tunio._native must pass the same tests.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunio.engine import Engine
from tunio.grocoalesce import CoalesceStats
from tunio.vnethdr import (
    MAX_SEGMENTS,
    VIRTIO_NET_HDR_F_DATA_VALID,
    VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VNET_HDR_LEN,
    OffloadError,
    VirtioNetHdr,
)

from packets import (
    ACK,
    CWR,
    FAST,
    FIN,
    NEEDS,
    PSH,
    SLOW,
    TCP,
    UDP,
    V4_DST,
    V4_SRC,
    V6_DST,
    V6_SRC,
    check_segments,
    l4_valid,
    make_pkt,
    ref_pseudo,
    ref_sum,
    super_packet,
    super_packets,
)

# --------------------------------------------------------------------------- gso_split


@SLOW
@given(super_packets())
def test_split_then_coalesce_round_trip(engine: Engine, case: tuple[VirtioNetHdr, bytes]) -> None:
    hdr, pkt = case
    segs = engine.gso_split(pkt, hdr, mtu=65535)
    check_segments(pkt, hdr, segs)
    frames = engine.gro_coalesce(segs)
    if len(segs) == 1:
        assert frames == [(VirtioNetHdr(), segs[0])]
        return
    assert len(frames) == 1
    mhdr, merged = frames[0]
    assert merged == pkt  # identical, including the partial checksum and IPv4 header
    assert mhdr == VirtioNetHdr(
        NEEDS, hdr.gso_type, hdr.hdr_len, hdr.gso_size, hdr.csum_start, hdr.csum_offset
    )
    assert engine.gso_split(merged, mhdr, mtu=65535) == segs
    # The data path's shape: the same packets, flagged as checksummed here (NEEDS_CSUM GSO),
    # and coalescing them as trusted sums nothing and writes the same frame.
    assert engine.split_frame(hdr.pack() + pkt, 65535) == (segs, True)
    stats = CoalesceStats()
    assert engine.gro_coalesce(segs, stats=stats, trusted=b"\x01" * len(segs)) == frames
    assert (stats.csum_verified, stats.csum_trusted) == (0, len(segs))


@pytest.mark.parametrize("v6", [False, True])
def test_split_64k_tcp(engine: Engine, v6: bool) -> None:
    # the shape of a real read: 12 bytes of TCP options, 45 x 1448 bytes of payload
    payload = random.Random(2).randbytes(45 * 1448 - (20 if v6 else 0))
    opts = bytes.fromhex("0101080a0001e24000000a1b")
    hdr, pkt = super_packet(payload, 1448, v6=v6, options=opts, flags=ACK | PSH, seq=2**32 - 5000)
    mtu = 1500 if not v6 else 1520
    segs = engine.gso_split(pkt, hdr, mtu=mtu)
    assert len(segs) == 45
    assert all(len(s) == (1500 if not v6 else 1520) for s in segs[:-1])
    check_segments(pkt, hdr, segs)
    assert sum(1 for s in segs if s[hdr.csum_start + 13] & PSH) == 1
    assert engine.gro_coalesce(segs)[0][1] == pkt
    with pytest.raises(OffloadError, match="mtu"):
        engine.gso_split(pkt, hdr, mtu=mtu - 1)


def test_split_fin_cwr_only_where_allowed(engine: Engine) -> None:
    hdr, pkt = super_packet(bytes(3000), 1000, flags=ACK | PSH | FIN | CWR)
    segs = engine.gso_split(pkt, hdr)
    assert [s[33] for s in segs] == [ACK | CWR, ACK, ACK | PSH | FIN]
    check_segments(pkt, hdr, segs)


def test_split_accepts_memoryview_and_no_needs_csum(engine: Engine) -> None:
    hdr, pkt = super_packet(bytes(range(256)) * 10, 700, v6=True)
    plain = VirtioNetHdr(0, hdr.gso_type, 0, hdr.gso_size, 0, 0)  # no NEEDS_CSUM: offsets ignored
    buf = memoryview(b"\0" * VNET_HDR_LEN + pkt)
    assert engine.gso_split(buf[VNET_HDR_LEN:], plain) == engine.gso_split(pkt, hdr)


def test_split_ipv6_extension_header(engine: Engine) -> None:
    _, pkt = super_packet(bytes(5000), 1200, v6=True)
    dest_opts = bytes([TCP, 0, 1, 4, 0, 0, 0, 0])  # next header TCP, 8 bytes, PadN
    ext = bytearray(pkt[:40] + dest_opts + pkt[40:])
    ext[6] = 60
    ext[4:6] = (len(ext) - 40).to_bytes(2, "big")
    ehdr = VirtioNetHdr(NEEDS, VIRTIO_NET_HDR_GSO_TCPV6, 0, 1200, 48, 16)
    segs = engine.gso_split(bytes(ext), ehdr)
    assert len(segs) == 5
    for seg in segs:
        assert seg[40:48] == dest_opts
        assert struct.unpack_from("!H", seg, 4)[0] == len(seg) - 40
        assert l4_valid(seg, 48, TCP)
    assert b"".join(s[48 + 20 :] for s in segs) == bytes(5000)


@pytest.mark.parametrize("tcp", [True, False])
@pytest.mark.parametrize("v6", [False, True])
def test_split_none_completes_checksum(engine: Engine, tcp: bool, v6: bool) -> None:
    pkt = make_pkt(b"hello world", v6=v6, tcp=tcp, partial=True)
    l4 = 40 if v6 else 20
    hdr = VirtioNetHdr(NEEDS, VIRTIO_NET_HDR_GSO_NONE, 0, 0, l4, 16 if tcp else 6)
    (out,) = engine.gso_split(pkt, hdr)
    assert out == make_pkt(b"hello world", v6=v6, tcp=tcp)
    assert l4_valid(out, l4, TCP if tcp else UDP)
    # without NEEDS_CSUM (or with only DATA_VALID) the packet passes unchanged
    other = VirtioNetHdr(VIRTIO_NET_HDR_F_DATA_VALID)
    assert engine.gso_split(memoryview(pkt), other) == [pkt]


def _udp_payload_with_zero_checksum(v6: bool) -> bytes:
    """A payload whose last word makes the UDP checksum come out as 0 (must be sent 0xFFFF)."""
    base = bytes(20)
    length = 8 + len(base) + 2
    src, dst = (V6_SRC, V6_DST) if v6 else (V4_SRC, V4_DST)
    hdr = struct.pack("!HHHH", 40000, 5201, length, 0)
    s = ref_sum(ref_pseudo(src, dst, UDP, length) + hdr + base)
    return base + (0xFFFF - s).to_bytes(2, "big")


@pytest.mark.parametrize("v6", [False, True])
def test_udp_zero_checksum_sent_as_ffff(engine: Engine, v6: bool) -> None:
    payload = _udp_payload_with_zero_checksum(v6)
    l4 = 40 if v6 else 20
    pkt = make_pkt(payload, v6=v6, tcp=False, partial=True)
    (out,) = engine.gso_split(pkt, VirtioNetHdr(NEEDS, 0, 0, 0, l4, 6))
    assert out[l4 + 6 : l4 + 8] == b"\xff\xff"
    # the same datagram as the last segment of a UDP_L4 super-packet
    hdr, sp = super_packet(bytes(100) + payload, 100, v6=v6, tcp=False)
    segs = engine.gso_split(sp, hdr)
    check_segments(sp, hdr, segs)
    assert segs[1][l4 + 6 : l4 + 8] == b"\xff\xff"


@pytest.mark.parametrize("gso_type", [VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP_L4])
def test_split_too_many_segments(engine: Engine, gso_type: int) -> None:
    tcp = gso_type == VIRTIO_NET_HDR_GSO_TCPV4
    hdr, pkt = super_packet(bytes(MAX_SEGMENTS * 10), 10, tcp=tcp)
    assert len(engine.gso_split(pkt, hdr)) == MAX_SEGMENTS
    hdr, pkt = super_packet(bytes(MAX_SEGMENTS * 10 + 1), 10, tcp=tcp)
    with pytest.raises(OffloadError, match="segments"):
        engine.gso_split(pkt, hdr)


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
def test_split_malformed(engine: Engine, name: str) -> None:
    pkt, hdr = MALFORMED[name]
    with pytest.raises(OffloadError):
        engine.gso_split(pkt, hdr)


def test_split_ipv6_routing_header_rejected(engine: Engine) -> None:
    routing = bytes([TCP, 0, 0, 1, 0, 0, 0, 0])  # type 0, segments left 1
    pkt = bytearray(V6_PKT[:40] + routing + V6_PKT[40:])
    pkt[6] = 43
    with pytest.raises(OffloadError, match="routing"):
        engine.gso_split(bytes(pkt), _hdr(V6_HDR, csum_start=48))


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
def test_split_random_input_only_offload_error(
    engine: Engine, data: bytes, hdr: VirtioNetHdr
) -> None:
    try:
        out = engine.gso_split(data, hdr)
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
    engine: Engine,
    case: tuple[VirtioNetHdr, bytes],
    edits: list[tuple[int, int]],
    cut: int,
    gso: int,
) -> None:
    hdr, pkt = case
    buf = bytearray(pkt[:cut])
    for pos, val in edits:
        if pos < len(buf):
            buf[pos] = val
    frame_hdr = _hdr(hdr, gso_size=gso)
    try:
        out = engine.gso_split(bytes(buf), frame_hdr, mtu=65535)
    except OffloadError:
        return
    assert all(isinstance(s, bytes) for s in out)
    # Whatever the split accepted and flags as checksummed here really is: trusting those
    # checksums changes nothing coalescing writes, only which checks are counted how.
    assert engine.split_frame(frame_hdr.pack() + bytes(buf), 65535) == (out, True)
    checked, trusted = CoalesceStats(), CoalesceStats()
    want = engine.gro_coalesce(out, stats=checked)
    assert engine.gro_coalesce(out, stats=trusted, trusted=b"\x01" * len(out)) == want
    assert trusted.bad_csum == checked.bad_csum == 0 and trusted.csum_verified == 0
    assert trusted.csum_trusted == checked.csum_verified
