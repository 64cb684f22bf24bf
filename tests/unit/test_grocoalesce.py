"""Tests for GRO coalescing: plain packets merged into GSO frames.

Every test takes the ``engine`` fixture (tests/unit/conftest.py) and runs once per offload
engine: the pure tunio.grocoalesce and the native tunio._native must pass the same tests.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunio.engine import Engine
from tunio.grocoalesce import CoalesceStats
from tunio.vnethdr import (
    MAX_SEGMENTS,
    VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VirtioNetHdr,
)

from packets import (
    ACK,
    CWR,
    FAST,
    FIN,
    NEEDS,
    PSH,
    RST,
    SLOW,
    SYN,
    TCP,
    UDP,
    URG,
    addrs,
    make_pkt,
    ref_pseudo,
    ref_sum,
)

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
def test_coalesce_basic(engine: Engine, v6: bool, tcp: bool) -> None:
    pkts = seq_pkts([100, 100, 100, 40], v6=v6, tcp=tcp, options=b"\x01" * 4 if tcp else b"")
    stats = CoalesceStats()
    ((hdr, frame),) = engine.gro_coalesce(pkts, stats=stats)
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
    assert engine.gso_split(frame, hdr) == pkts
    assert stats == CoalesceStats(4, 1, 3, 1, 0, csum_verified=4)
    engine.gro_coalesce(pkts, stats=stats)
    assert stats.packets_in == 8 and stats.merged == 6


def test_coalesce_kernel_write_rules(engine: Engine) -> None:
    """Merged headers satisfy the checks of tun_vnet_hdr_get / virtio_net_hdr_to_skb (§2.5)."""
    pkts = seq_pkts([1448] * 45, options=b"\x01\x01\x08\x0a" + bytes(8))
    ((hdr, frame),) = engine.gro_coalesce(pkts)
    assert len(frame) <= 65535
    assert hdr.csum_start + hdr.csum_offset + 2 <= hdr.hdr_len <= len(frame)
    assert hdr.csum_start >= 20 and hdr.csum_offset == 16
    assert 0 < hdr.gso_size < 0xFFFF


def test_coalesce_different_flows_interleaved(engine: Engine) -> None:
    a = seq_pkts([100] * 3, sport=1)
    b = seq_pkts([100] * 3, sport=2)
    frames = engine.gro_coalesce([a[0], b[0], a[1], b[1], a[2], b[2]])
    assert len(frames) == 2
    assert engine.gso_split(frames[0][1], frames[0][0]) == a
    assert engine.gso_split(frames[1][1], frames[1][0]) == b


def test_coalesce_never_mixes_flows(engine: Engine) -> None:
    pkts = [
        make_pkt(bytes(100), seq=1000, sport=1),
        make_pkt(bytes(100), seq=1100, sport=2),
        make_pkt(bytes(100), seq=1100, dport=3),
        make_pkt(bytes(100), seq=1100, v6=True),
        make_pkt(bytes(100), seq=1100, tcp=False),
    ]
    assert_unchanged(pkts, engine.gro_coalesce(pkts))


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
def test_coalesce_refuses(engine: Engine, name: str, second: dict[str, Any]) -> None:
    kw: dict[str, Any] = {"options": b"\x01\x01\x01\x01"} if name == "options" else {}
    first = make_pkt(bytes(100), seq=1000, **kw)
    second = dict(second)
    size = int(second.pop("payload", 100))
    pkts = [first, make_pkt(bytes(size), **{"seq": 1100, **second})]
    assert_unchanged(pkts, engine.gro_coalesce(pkts))
    if name != "bad-csum":  # trusted packets are refused for everything but their checksum
        assert_unchanged(pkts, engine.gro_coalesce(pkts, trusted=b"\x01\x01"))
        # ... also when they would join a frame that already grew (the pure engine's fast
        # path handles the packets after the second)
        run = [make_pkt(bytes(100), seq=800, **kw), make_pkt(bytes(100), seq=900, **kw), *pkts]
        frames = engine.gro_coalesce(run, trusted=b"\x01" * 4)
        assert frames[-1] == (VirtioNetHdr(), pkts[1]) and len(frames) == 2


@pytest.mark.parametrize("v6", [False, True])
def test_coalesce_refuses_first_packet_flaws(engine: Engine, v6: bool) -> None:
    flaws: list[dict[str, Any]] = [{"bad_csum": True}, {"flags": ACK | PSH}, {"flags": ACK | FIN}]
    for kw in flaws:
        pkts = [
            make_pkt(bytes(100), seq=1000, v6=v6, **kw),
            make_pkt(bytes(100), seq=1100, v6=v6),
        ]
        assert_unchanged(pkts, engine.gro_coalesce(pkts))


def test_coalesce_bad_checksum_counted_and_verify_off(engine: Engine) -> None:
    good = seq_pkts([100] * 3)
    bad = make_pkt(bytes([1]) * 100, seq=1100, ident=101, bad_csum=True)
    pkts = [good[0], bad, good[2]]
    stats = CoalesceStats()
    assert_unchanged(pkts, engine.gro_coalesce(pkts, stats=stats))
    assert stats.bad_csum == 1 and stats.merged == 0
    # verify=False trusts the caller: the corrupt packet is merged (the kernel would then
    # compute a fresh checksum over it), which is why verification is the default
    ((hdr, frame),) = engine.gro_coalesce(pkts, verify=False)
    assert hdr.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 and len(frame) == 340


def test_coalesce_skips_the_check_of_trusted_packets_only(engine: Engine) -> None:
    """A packet flagged ``trusted`` (its checksum was computed by the split) is not summed
    again; every packet without the flag is, even between trusted ones of its flow."""
    pkts = seq_pkts([100] * 4)
    stats = CoalesceStats()
    ((_, frame),) = engine.gro_coalesce(pkts, stats=stats, trusted=b"\x01" * 4)
    assert len(frame) == 440
    assert (stats.csum_trusted, stats.csum_verified, stats.merged) == (4, 0, 3)
    # The flag is honoured, not checked: a wrong checksum on a trusted packet goes unseen.
    pkts[2] = make_pkt(bytes([2]) * 100, seq=1200, ident=102, bad_csum=True)
    ((_, frame),) = engine.gro_coalesce(pkts, trusted=bytearray([1, 1, 1, 1]))
    assert len(frame) == 440
    # Without the flag the same packet is verified, refused, written alone and counted.
    stats = CoalesceStats()
    frames = engine.gro_coalesce(pkts, stats=stats, trusted=memoryview(b"\x01\x01\x00\x01"))
    assert [len(f) for _, f in frames] == [240, 140, 140] and frames[1][1] == pkts[2]
    assert (stats.csum_trusted, stats.csum_verified, stats.bad_csum) == (2, 1, 1)
    # verify=False checks nothing and counts no check
    stats = CoalesceStats()
    assert len(engine.gro_coalesce(pkts, stats=stats, verify=False, trusted=bytes(4))) == 1
    assert (stats.csum_trusted, stats.csum_verified) == (0, 0)


def test_coalesce_verifies_an_untrusted_head_before_trusted_followers(engine: Engine) -> None:
    pkts = seq_pkts([100] * 3)
    pkts[0] = make_pkt(bytes(100), seq=1000, ident=100, bad_csum=True)
    stats = CoalesceStats()
    frames = engine.gro_coalesce(pkts, stats=stats, trusted=b"\x00\x01\x01")
    # the bad head stays alone; the two trusted packets after it merge with each other
    assert [len(f) for _, f in frames] == [140, 240]
    assert (stats.csum_verified, stats.bad_csum, stats.csum_trusted) == (1, 1, 2)


@pytest.mark.parametrize("flags", [b"", b"\x01", b"\x01" * 4])
def test_coalesce_refuses_trusted_of_the_wrong_length(engine: Engine, flags: bytes) -> None:
    stats = CoalesceStats()
    with pytest.raises(ValueError, match="trusted"):
        engine.gro_coalesce(seq_pkts([100] * 3), stats=stats, trusted=flags)
    with pytest.raises(ValueError, match="trusted"):
        engine.coalesce_frames(seq_pkts([100] * 3), True, 65535, stats, True, flags)
    assert stats == CoalesceStats()


def test_coalesce_ipv4_options_and_fragments_never_merge(engine: Engine) -> None:
    opt = b"\x01\x01\x01\x00"
    pkts = seq_pkts([100] * 3, ip_options=opt)
    assert_unchanged(pkts, engine.gro_coalesce(pkts))
    frags = [make_pkt(bytes(100), seq=1000, frag=0x2000), make_pkt(bytes(100), frag=0x200)]
    assert_unchanged(frags, engine.gro_coalesce(frags))


def test_coalesce_stops_after_short_segment(engine: Engine) -> None:
    pkts = seq_pkts([100, 50, 100])
    frames = engine.gro_coalesce(pkts)
    assert len(frames) == 2
    assert frames[0][0].gso_size == 100 and len(frames[0][1]) == 40 + 150
    assert frames[1] == (VirtioNetHdr(), pkts[2])


def test_coalesce_stops_after_psh(engine: Engine) -> None:
    pkts = seq_pkts([100, 100, 100])
    pkts[1] = make_pkt(bytes([1]) * 100, seq=1100, ident=101, flags=ACK | PSH)
    frames = engine.gro_coalesce(pkts)
    assert len(frames) == 2
    assert frames[0][1][33] == ACK | PSH
    assert engine.gso_split(frames[0][1], frames[0][0]) == pkts[:2]
    assert frames[1] == (VirtioNetHdr(), pkts[2])


def test_coalesce_udp_flag_and_short_datagram(engine: Engine) -> None:
    pkts = seq_pkts([200, 200, 10, 200], tcp=False)
    assert_unchanged(pkts, engine.gro_coalesce(pkts, udp=False))
    frames = engine.gro_coalesce(pkts)
    assert [len(f) for _, f in frames] == [28 + 410, 228]


def test_coalesce_max_size_and_segment_limit(engine: Engine) -> None:
    pkts = seq_pkts([1000] * 10)
    frames = engine.gro_coalesce(pkts, max_size=40 + 3000)
    assert [len(f) for _, f in frames] == [3040, 3040, 3040, 1040]
    many = seq_pkts([1] * (MAX_SEGMENTS + 5))
    frames = engine.gro_coalesce(many)
    assert [len(f) for _, f in frames] == [40 + MAX_SEGMENTS, 40 + 5]


def test_coalesce_refuses_max_size_above_65535(engine: Engine) -> None:
    stats = CoalesceStats()
    with pytest.raises(ValueError, match="65535"):
        engine.gro_coalesce(seq_pkts([100] * 3), max_size=65536, stats=stats)
    assert stats == CoalesceStats()


def test_coalesce_non_candidate_keeps_flow_order(engine: Engine) -> None:
    a = seq_pkts([100] * 4)
    fin = make_pkt(b"", seq=1200, flags=ACK | FIN)
    pkts = [a[0], a[1], fin, a[2], a[3]]
    frames = engine.gro_coalesce(pkts)
    assert [f for _, f in frames][1] == fin
    assert len(frames) == 3


def test_coalesce_garbage_passes_through(engine: Engine) -> None:
    pkts = [b"", b"\x45", bytes(27), bytes(100), b"\x60" + bytes(60), b"\xff" * 80]
    assert_unchanged(pkts, engine.gro_coalesce(pkts))


@FAST
@given(st.lists(st.binary(max_size=120), max_size=8))
def test_coalesce_random_bytes_never_raises(engine: Engine, pkts: list[bytes]) -> None:
    frames = engine.gro_coalesce(pkts)
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
def test_coalesce_then_split_restores_every_flow(engine: Engine, batch: list[bytes]) -> None:
    stats = CoalesceStats()
    frames = engine.gro_coalesce(batch, stats=stats)
    assert len(frames) <= len(batch)
    # Every checksum here is valid: trusting them (the pure engine's fast path) or not
    # checking at all writes the same frames; only the checks' counts move.
    trusting = CoalesceStats()
    assert engine.gro_coalesce(batch, stats=trusting, trusted=b"\x01" * len(batch)) == frames
    assert engine.gro_coalesce(batch, verify=False) == frames
    assert (trusting.csum_trusted, trusting.csum_verified) == (stats.csum_verified, 0)
    assert trusting.merged == stats.merged and stats.bad_csum == trusting.bad_csum == 0
    expanded: list[bytes] = []
    for hdr, frame in frames:
        if hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE:
            assert hdr == VirtioNetHdr()
            expanded.append(frame)
            continue
        assert hdr.flags == NEEDS and hdr.hdr_len <= len(frame) <= 65535
        assert len(frame) - hdr.hdr_len > hdr.gso_size
        expanded.extend(engine.gso_split(frame, hdr, mtu=65535))
    per_flow_in: dict[tuple[bytes, ...], list[bytes]] = defaultdict(list)
    per_flow_out: dict[tuple[bytes, ...], list[bytes]] = defaultdict(list)
    for p in batch:
        per_flow_in[_flow(p)].append(p)
    for p in expanded:
        per_flow_out[_flow(p)].append(p)
    assert per_flow_out == per_flow_in
