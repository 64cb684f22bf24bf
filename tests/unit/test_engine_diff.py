"""Differential tests: the native engine must behave exactly like the pure-Python one.

Thousands of generated frames (valid super-packets, mutated ones, truncated ones, random
bytes, IPv6 extension headers, odd virtio_net_hdr fields) and batches (interleaved flows,
corrupted and reordered segments, garbage) go through both engines; outputs, counters and
errors (class and message) must be identical. Seeds are fixed, so a failure reproduces.
A few tests at the end check what only the native engine has to promise: no crash when its
input changes under it, correct results from several threads at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tunio.csum import sum16
from tunio.engine import Engine, get_engine
from tunio.grocoalesce import CoalesceStats
from tunio.vnethdr import OffloadError, VirtioNetHdr

from engines import require_engine
from packets import ACK, CWR, FIN, PSH, RST, SYN, super_packet

PY = get_engine("python")
GSO_TYPES = [0, 1, 2, 3, 4, 5, 7, 0x81, 0x84, 0x85, 0x20, 0xFF]
TCP_FLAGS = [ACK, ACK, ACK, ACK | PSH, ACK | FIN, ACK | PSH | FIN | CWR, SYN | ACK, RST, 0]


@pytest.fixture(scope="module")
def native() -> Engine:
    return require_engine("native")


def outcome(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", message); any other exception fails the test.

    OffloadError and ValueError (the only error coalescing raises) are told apart by class.
    """
    try:
        return "ok", fn(*args, **kw)
    except OffloadError as exc:
        return "error", str(exc)
    except ValueError as exc:
        return "ValueError", str(exc)


# --------------------------------------------------------------------------- generators


def valid_super(rng: random.Random, max_payload: int = 9000) -> tuple[VirtioNetHdr, bytes]:
    v6, tcp = rng.random() < 0.4, rng.random() < 0.7
    options = bytes(rng.randrange(256) for _ in range(4 * rng.randrange(11))) if tcp else b""
    gso = rng.choice([1, 7, 100, 536, 1000, 1448, 1460, 8948, rng.randrange(1, 3000)])
    hlen = (40 if v6 else 20) + (20 + len(options) if tcp else 8)
    top = min(gso * 128 + rng.randrange(3), 65535 - hlen, max_payload)
    plen = rng.choice([0, 1, gso - 1, gso, gso + 1, rng.randrange(top + 1), top])
    plen = max(0, min(plen, top))
    kw: dict[str, Any] = {
        "v6": v6,
        "tcp": tcp,
        "seq": rng.randrange(2**32),
        "ack": rng.randrange(2**32),
        "flags": rng.choice(TCP_FLAGS),
        "ident": rng.randrange(0x10000),
        "ttl": rng.randrange(256),
        "tos": rng.randrange(256),
        "frag": rng.choice([0, 0x4000]),
        "window": rng.randrange(0x10000),
        "flow_label": rng.randrange(0x100000),
        "options": options,
    }
    return super_packet(rng.randbytes(plen), max(gso, 1), **kw)


def with_ipv6_ext(rng: random.Random, hdr: VirtioNetHdr, pkt: bytes) -> tuple[VirtioNetHdr, bytes]:
    """Insert 1..9 hop-by-hop / routing / destination-options headers (routing: maybe with
    segments left), fixing the payload length and csum_start."""
    b = bytearray(pkt)
    nh = b[6]  # built from the L4 header outwards: each new header points at the last one
    exts = b""
    for _ in range(rng.randrange(1, 10)):
        kind = rng.choice([0, 43, 60])
        length = rng.randrange(3)
        seg_left = rng.choice([0, 0, 1]) if kind == 43 else 0
        exts = bytes([nh, length, 0, seg_left]) + bytes(4 + 8 * length) + exts
        nh = kind
    b[6] = nh
    b = b[:40] + bytearray(exts) + b[40:]
    b[4:6] = (len(b) - 40).to_bytes(2, "big")
    start = hdr.csum_start + len(exts)
    return VirtioNetHdr(
        hdr.flags, hdr.gso_type, hdr.hdr_len, hdr.gso_size, start, hdr.csum_offset
    ), bytes(b)


def mutate_hdr(rng: random.Random, hdr: VirtioNetHdr) -> VirtioNetHdr:
    f = [hdr.flags, hdr.gso_type, hdr.hdr_len, hdr.gso_size, hdr.csum_start, hdr.csum_offset]
    which = rng.randrange(6)
    if which == 0:
        f[0] = rng.choice([0, 1, 2, 3, rng.randrange(256)])
    elif which == 1:
        f[1] = rng.choice(GSO_TYPES)
    elif which == 2:
        f[2] = rng.randrange(0x10000)
    elif which == 3:
        f[3] = rng.choice([0, 1, 0xFFFE, 0xFFFF, rng.randrange(0x10000), f[3] + 1])
    elif which == 4:
        f[4] = rng.choice([0, 10, 19, 20, 21, 40, 60, rng.randrange(0x10000)])
    else:
        f[5] = rng.choice([0, 6, 16, 17, rng.randrange(0x10000)])
    return VirtioNetHdr(*(max(0, min(v, 0xFF if i < 2 else 0xFFFF)) for i, v in enumerate(f)))


def mutate_bytes(rng: random.Random, pkt: bytes) -> bytes:
    b = bytearray(pkt)
    for _ in range(rng.randrange(1, 5)):
        if not b:
            break
        pos = rng.randrange(min(len(b), 80)) if rng.random() < 0.8 else rng.randrange(len(b))
        b[pos] = rng.randrange(256)
    return bytes(b)


def split_case(rng: random.Random) -> tuple[bytes, VirtioNetHdr, int]:
    kind = rng.random()
    mtu = rng.choice([1500, 1500, 9000, 65535, 576, rng.randrange(0, 70000)])
    if kind < 0.1:  # noise with a plausible or random header
        data = rng.randbytes(rng.choice([0, 1, 19, 20, 39, 40, 60, rng.randrange(300)]))
        if data and rng.random() < 0.7:
            data = bytes([rng.choice([0x45, 0x46, 0x4F, 0x60, 0x00, 0x55])]) + data[1:]
        hdr = VirtioNetHdr(
            rng.randrange(4),
            rng.choice(GSO_TYPES),
            rng.randrange(100),
            rng.randrange(3000),
            rng.randrange(80),
            rng.randrange(20),
        )
        return data, hdr, mtu
    hdr, pkt = valid_super(rng)
    if pkt[0] >> 4 == 6 and rng.random() < 0.15:
        hdr, pkt = with_ipv6_ext(rng, hdr, pkt)
    if kind < 0.25:
        pkt = mutate_bytes(rng, pkt)
    elif kind < 0.35:
        pkt = pkt[: rng.randrange(len(pkt) + 1)]
    elif kind < 0.5:
        hdr = mutate_hdr(rng, hdr)
    elif kind < 0.55:  # a GSO_NONE read, maybe with NEEDS_CSUM and odd offsets
        hdr = VirtioNetHdr(
            rng.randrange(4), 0, 0, 0, rng.randrange(len(pkt) + 3), rng.randrange(20)
        )
    elif kind < 0.6:
        hdr = VirtioNetHdr(0, hdr.gso_type, 0, hdr.gso_size, 0, 0)  # no NEEDS_CSUM
    return pkt, hdr, mtu


def segments(rng: random.Random, sport: int) -> list[bytes]:
    """A flow's worth of segments: split a valid super-packet with the reference engine."""
    for _ in range(20):
        hdr, pkt = valid_super(rng, max_payload=6000)
        pkt = bytearray(pkt)
        l4 = hdr.csum_start
        pkt[l4 : l4 + 2] = sport.to_bytes(2, "big")  # flow id; the checksum field is partial
        try:
            return PY.gso_split(bytes(pkt), hdr, 65535)
        except OffloadError:
            continue
    return []


def udp_l4(pkt: bytes) -> int:
    """L4 offset of a UDP packet without options or extension headers, else 0."""
    if len(pkt) >= 48 and pkt[0] == 0x45 and pkt[9] == 17:
        return 20
    if len(pkt) >= 48 and pkt[0] >> 4 == 6 and pkt[6] == 17:
        return 40
    return 0


def batch_case(rng: random.Random) -> list[bytes]:
    flows = [segments(rng, rng.randrange(4)) for _ in range(rng.randrange(1, 5))]
    for flow in flows:
        for i in range(len(flow)):
            r = rng.random()
            if r < 0.05:
                flow[i] = mutate_bytes(rng, flow[i])  # header damage or bad checksum
            elif r < 0.08:
                flow[i] = flow[i][: rng.randrange(len(flow[i]) + 1)]
            elif r < 0.13 and udp_l4(flow[i]):
                b = bytearray(flow[i])
                l4 = udp_l4(flow[i])
                b[l4 + 6 : l4 + 8] = b"\0\0"  # "no checksum": fine on IPv4, invalid on IPv6
                flow[i] = bytes(b)
            elif r < 0.15 and len(flow[i]) > 60:
                b = bytearray(flow[i])
                b[-1] ^= 0xFF  # payload corruption: only the L4 checksum can tell
                flow[i] = bytes(b)
        if len(flow) > 2 and rng.random() < 0.2:
            j = rng.randrange(len(flow) - 1)
            flow[j], flow[j + 1] = flow[j + 1], flow[j]  # reordered
        if flow and rng.random() < 0.1:
            flow.insert(rng.randrange(len(flow)), rng.choice(flow))  # duplicate
    order = [i for i, f in enumerate(flows) for _ in f]
    rng.shuffle(order)
    pos = [0] * len(flows)
    batch: list[bytes] = []
    for i in order:
        batch.append(flows[i][pos[i]])
        pos[i] += 1
    for _ in range(rng.choice([0, 0, 1, 3])):
        batch.insert(rng.randrange(len(batch) + 1), rng.randbytes(rng.randrange(120)))
    return batch


# --------------------------------------------------------------------------- differential


def test_split_identical_on_random_and_malformed_frames(native: Engine) -> None:
    rng = random.Random(11)
    kinds: dict[str, int] = {"ok": 0, "error": 0}
    messages: set[str] = set()
    for _ in range(3000):
        pkt, hdr, mtu = split_case(rng)
        want = outcome(PY.gso_split, pkt, hdr, mtu)
        assert outcome(native.gso_split, pkt, hdr, mtu) == want, (hdr, pkt[:80], mtu)
        raw = hdr.pack() + pkt
        assert outcome(native.split_frame, raw, mtu) == outcome(PY.split_frame, raw, mtu)
        kinds[want[0]] += 1
        if want[0] == "error":
            messages.add(want[1].split(" ")[0])
    # the corpus reaches both outcomes and many different checks
    assert kinds["ok"] > 800 and kinds["error"] > 800, kinds
    assert len(messages) >= 8, messages


def test_split_identical_for_every_buffer_type(native: Engine) -> None:
    rng = random.Random(12)
    for _ in range(300):
        pkt, hdr, mtu = split_case(rng)
        want = outcome(PY.gso_split, pkt, hdr, mtu)
        padded = memoryview(b"\xee" * 3 + pkt + b"\xee")[3:-1]
        for frame in (bytearray(pkt), memoryview(pkt), padded, memoryview(bytearray(pkt))):
            assert outcome(native.gso_split, frame, hdr, mtu) == want
    raw = rng.randbytes(100)
    for n in range(10):  # a read shorter than the virtio_net_hdr
        assert outcome(native.split_frame, raw[:n], 1500) == outcome(PY.split_frame, raw[:n], 1500)


def test_coalesce_identical_on_random_batches(native: Engine) -> None:
    rng = random.Random(13)
    totals = CoalesceStats()
    for _ in range(3000):
        batch = batch_case(rng)
        udp, verify = rng.random() < 0.8, rng.random() < 0.8
        max_size = rng.choice([65535, 65535, 3000, 1, 0, -5, rng.randrange(65536)])
        trusted = trust_case(rng, len(batch))
        kw: dict[str, Any] = {"udp": udp, "max_size": max_size, "verify": verify}
        s_py, s_c = CoalesceStats(), CoalesceStats()
        want = outcome(PY.gro_coalesce, batch, stats=s_py, trusted=trusted, **kw)
        got = outcome(native.gro_coalesce, batch, stats=s_c, trusted=trusted, **kw)
        assert got == want
        assert s_c == s_py
        args = (batch, udp, max_size, None, verify, trusted)
        assert outcome(native.coalesce_frames, *args) == outcome(PY.coalesce_frames, *args)
        totals.merge(s_py)
    # not vacuous: plenty of merges, refusals, bad checksums, checks made and skipped
    assert totals.merged > 10000 and totals.super_frames > 1500 and totals.bad_csum > 200, totals
    assert totals.frames_out > totals.super_frames * 2, totals
    assert totals.csum_verified > 5000 and totals.csum_trusted > 5000, totals


def trust_case(rng: random.Random, n: int) -> Any:
    """A ``trusted`` argument: none, all, random flags (any non-zero byte counts), another
    buffer type, or (rarely) the wrong length."""
    r = rng.random()
    if r < 0.3:
        return None
    if r < 0.5:
        return b"\x01" * n
    flags = bytes(rng.choice([0, 0, 1, 2, 255]) for _ in range(n))
    if r < 0.9:
        return flags
    if r < 0.95:
        return rng.choice([bytearray(flags), memoryview(flags)])
    return flags + b"\x01" if rng.random() < 0.5 else flags[1:]


def test_coalesce_identical_on_random_bytes(native: Engine) -> None:
    rng = random.Random(14)
    for _ in range(2000):
        batch = [rng.randbytes(rng.randrange(120)) for _ in range(rng.randrange(8))]
        for pkt in list(batch):  # plausible first bytes reach deeper into the parser
            if pkt and rng.random() < 0.5:
                batch.append(bytes([rng.choice([0x45, 0x60])]) + pkt[1:])
        s_py, s_c = CoalesceStats(), CoalesceStats()
        assert native.gro_coalesce(batch, stats=s_c) == PY.gro_coalesce(batch, stats=s_py)
        assert s_c == s_py


def test_coalesce_accepts_bytes_like_packets(native: Engine) -> None:
    rng = random.Random(15)
    batch = segments(rng, 1) + segments(rng, 2)
    mixed: list[Any] = [
        bytearray(p) if i % 3 == 0 else memoryview(p) if i % 3 == 1 else p
        for i, p in enumerate(batch)
    ]
    assert native.gro_coalesce(mixed) == PY.gro_coalesce(mixed)
    assert native.gro_coalesce(tuple(batch)) == PY.gro_coalesce(batch)
    assert native.gro_coalesce([]) == PY.gro_coalesce([]) == []


def test_coalesce_returns_unmerged_packets_themselves(native: Engine) -> None:
    pkts = [bytes(30), b"\x45" + bytes(50)]
    out = native.gro_coalesce(pkts)
    assert all(a is b for (_, a), b in zip(out, pkts, strict=True))
    assert all(h is out[0][0] for h, _ in out)  # one shared all-zero header, like the pure one


def test_sum16_identical(native: Engine) -> None:
    import tunio._native as mod

    rng = random.Random(16)
    data = rng.randbytes(70000)
    for _ in range(3000):
        start = rng.randrange(64)
        n = rng.choice([0, 1, 2, 3, 15, 16, 17, rng.randrange(200), rng.randrange(70000 - 64)])
        view = memoryview(data)[start : start + n]
        initial = rng.choice([0, 1, 0xFFFF, 0x10000, rng.randrange(2**40), 2**64 - 1])
        assert mod.sum16(view, initial) == sum16(view, initial)
    for n in (0, 1, 2, 4096, 65535, 65536):
        assert mod.sum16(b"\xff" * n) == sum16(b"\xff" * n)
        assert mod.sum16(bytes(n)) == sum16(bytes(n)) == 0


# --------------------------------------------------------------------------- native only


@pytest.mark.parametrize(
    "fields", [(256, 1, 0, 1000, 20, 16), (1, 1, 0, 0x10000, 20, 16), (1, 1, 0, 1000, -1, 16)]
)
def test_native_refuses_header_fields_out_of_range(native: Engine, fields: tuple[int, ...]) -> None:
    """VirtioNetHdr.unpack cannot produce these; the native engine refuses to guess."""
    _, pkt = super_packet(bytes(3000), 1000)
    with pytest.raises(OffloadError, match="out of range"):
        native.gso_split(pkt, VirtioNetHdr(*fields))


def test_native_survives_input_mutated_while_it_works(native: Engine) -> None:
    """Another thread rewrites the frame's bytes during the GIL-free copy: any result or an
    OffloadError is fine, a crash is not."""
    hdr, pkt = super_packet(random.Random(17).randbytes(60000), 1448, options=bytes(12))
    buf = bytearray(pkt)
    stop = threading.Event()

    def scribble() -> None:
        rng = random.Random(18)
        while not stop.is_set():
            for _ in range(200):
                buf[rng.randrange(100)] = rng.randrange(256)

    t = threading.Thread(target=scribble)
    t.start()
    try:
        for _ in range(300):
            try:
                segs = native.gso_split(buf, hdr, 65535)
            except OffloadError:
                continue
            assert all(isinstance(s, bytes) for s in segs)
            native.gro_coalesce(segs)
    finally:
        stop.set()
        t.join()


def test_native_threads_get_correct_results(native: Engine) -> None:
    cases = [super_packet(random.Random(i).randbytes(40000), 1448) for i in range(4)]
    expected = [PY.gro_coalesce(PY.gso_split(p, h, 1500)) for h, p in cases]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            h, p = cases[i]
            for _ in range(100):
                assert native.gro_coalesce(native.gso_split(p, h, 1500)) == expected[i]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
