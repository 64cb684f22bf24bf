"""virtio_net_hdr codec, internet checksums, GSO split and GRO coalescing for TUN forwarders.

A TUN device opened with IFF_VNET_HDR and an offload mask (TUNSETOFFLOAD) hands the reader
up to 64 KB TCP/UDP "super-packets" preceded by a 10-byte ``virtio_net_hdr`` and accepts the
same on write (see ../shared/KERNEL-NOTES.md §2.4, §2.5 and §3). This module holds the pure
logic a Python forwarder needs for that, with no I/O:

* :class:`VirtioNetHdr` packs and unpacks the header.
* :func:`checksum` / :func:`pseudo_header_sum` do RFC 1071 arithmetic at C speed, using the
  identity "one's-complement sum of 16-bit words == int.from_bytes(data) mod 0xFFFF" (because
  2**16 is 1 modulo 0xFFFF) instead of a Python loop over words.
* :func:`gso_split` turns one read into plain IP packets with complete checksums.
* :func:`gro_coalesce` merges a batch of plain packets back into as few writes as possible.

Anything malformed raises :class:`OffloadError`; a forwarder drops and counts such packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "MAX_SEGMENTS",
    "VIRTIO_NET_HDR_F_DATA_VALID",
    "VIRTIO_NET_HDR_F_NEEDS_CSUM",
    "VIRTIO_NET_HDR_GSO_ECN",
    "VIRTIO_NET_HDR_GSO_NONE",
    "VIRTIO_NET_HDR_GSO_TCPV4",
    "VIRTIO_NET_HDR_GSO_TCPV6",
    "VIRTIO_NET_HDR_GSO_UDP",
    "VIRTIO_NET_HDR_GSO_UDP_L4",
    "VNET_HDR_LEN",
    "CoalesceStats",
    "OffloadError",
    "VirtioNetHdr",
    "checksum",
    "fold16",
    "gro_coalesce",
    "gso_split",
    "pseudo_header_sum",
    "sum16",
]

VNET_HDR_LEN = 10

VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2

VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_UDP = 3
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_UDP_L4 = 5
VIRTIO_NET_HDR_GSO_ECN = 0x80

# Most segments one super-packet may carry: the kernel's UDP_MAX_SEGMENTS, and the batch size
# wireguard-go / tun-rs size their output buffers for (KERNEL-NOTES §3.1).
MAX_SEGMENTS = 128

_IPPROTO_TCP = 6
_IPPROTO_UDP = 17
_TCP_CSUM_OFFSET = 16
_UDP_CSUM_OFFSET = 6
_TCP_FIN = 0x01
_TCP_PSH = 0x08
_TCP_ACK = 0x10
_TCP_CWR = 0x80
# IPv6 extension headers gso_split walks over: hop-by-hop, routing, destination options.
_IPV6_EXT = frozenset((0, 43, 60))
_IPV6_ROUTING = 43

_Bytes = bytes | bytearray | memoryview

_HDR = struct.Struct("<BBHHHH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U16x2 = struct.Struct(">HH")


class OffloadError(ValueError):
    """Malformed packet or virtio_net_hdr; the forwarder drops and counts it."""


@dataclass(frozen=True, slots=True)
class VirtioNetHdr:
    """``struct virtio_net_hdr``: 10 bytes, the u16 fields little-endian (TUN on LE hosts)."""

    flags: int = 0
    gso_type: int = 0
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    def pack(self) -> bytes:
        """The 10 wire bytes; OffloadError if a field does not fit its width."""
        try:
            return _HDR.pack(
                self.flags,
                self.gso_type,
                self.hdr_len,
                self.gso_size,
                self.csum_start,
                self.csum_offset,
            )
        except struct.error as exc:
            raise OffloadError(f"virtio_net_hdr field out of range: {exc}") from None

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview) -> VirtioNetHdr:
        """Decode the first 10 bytes of ``buf`` (longer buffers, e.g. a whole read, are fine)."""
        if len(buf) < VNET_HDR_LEN:
            raise OffloadError(f"virtio_net_hdr needs {VNET_HDR_LEN} bytes, got {len(buf)}")
        return cls(*_HDR.unpack_from(buf))


_ZERO_HDR = VirtioNetHdr()

# --------------------------------------------------------------------------- checksums


def fold16(total: int) -> int:
    """Fold a non-negative partial sum to 16 bits with end-around carry.

    Same result as repeatedly adding the high part to the low 16 bits: 0 stays 0, any other
    multiple of 0xFFFF becomes 0xFFFF.
    """
    if total <= 0xFFFF:
        return total
    return total % 0xFFFF or 0xFFFF


def sum16(data: _Bytes, initial: int = 0) -> int:
    """Folded (not complemented) one's-complement sum of big-endian 16-bit words plus ``initial``.

    An odd trailing byte is padded with a zero byte. ``initial`` is any non-negative partial
    sum, folded or not (e.g. :func:`pseudo_header_sum`).
    """
    n = len(data)
    if n > _BIG:
        return fold16(_sum_big(data) + initial)
    value = int.from_bytes(data, "big")
    if n & 1:
        value <<= 8
    return fold16(value + initial)


# Above this many bytes a single ``% 0xFFFF`` (one hardware division per 30-bit digit) costs
# more than adding the integers of 2 KB chunks first: each chunk is followed by an even number
# of bytes, so its weight 2**(8 * even) is 1 modulo 0xFFFF.
_BIG = 3072
_CHUNK = 2048


def _sum_big(data: _Bytes) -> int:
    mv = memoryview(data)
    n = len(mv)
    tail = n - (n - 1) % _CHUNK - 1  # start of the last chunk
    total = int.from_bytes(mv[tail:], "big")
    if n & 1:
        total <<= 8
    for off in range(0, tail, _CHUNK):
        total += int.from_bytes(mv[off : off + _CHUNK], "big")
    return total


def checksum(data: _Bytes, initial: int = 0) -> int:
    """Internet checksum (RFC 1071): the complemented 16-bit one's-complement sum.

    ``initial`` is added to the sum first (a pseudo-header sum or the value the kernel left in
    a CHECKSUM_PARTIAL field). Checking a received header or segment: the checksum over it,
    including its checksum field, is 0.
    """
    return ~sum16(data, initial) & 0xFFFF


def _pseudo_base(addrs: _Bytes, proto: int) -> int:
    """Unfolded pseudo-header sum without the length; ``addrs`` = source + destination."""
    return int.from_bytes(addrs, "big") + proto


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Pseudo-header sum for TCP/UDP over IPv4 (4-byte addresses) or IPv6 (16-byte).

    Returns the **folded, non-complemented** 16-bit sum of the addresses, the protocol and the
    L4 length: what the kernel stores in the checksum field of a CHECKSUM_PARTIAL
    (NEEDS_CSUM) packet, and what :func:`checksum` accepts as ``initial``.
    """
    if len(src) != len(dst) or len(src) not in (4, 16):
        raise OffloadError("pseudo header needs two IPv4 or two IPv6 addresses")
    return fold16(int.from_bytes(src, "big") + int.from_bytes(dst, "big") + proto + length)


# --------------------------------------------------------------------------- GSO split


def _complete_csum(frame: memoryview, hdr: VirtioNetHdr) -> bytes:
    """GSO_NONE with NEEDS_CSUM: finish the checksum the kernel left partial."""
    start, field = hdr.csum_start, hdr.csum_start + hdr.csum_offset
    if field + 2 > len(frame):
        raise OffloadError(f"checksum field at {field} outside {len(frame)}-byte packet")
    pkt = bytearray(frame)
    initial = _U16.unpack_from(pkt, field)[0]
    pkt[field : field + 2] = b"\0\0"
    csum = checksum(memoryview(pkt)[start:], initial)
    if csum == 0 and hdr.csum_offset == _UDP_CSUM_OFFSET:
        csum = 0xFFFF  # UDP: 0 means "no checksum"; 0xFFFF is the same value in 1's complement
    _U16.pack_into(pkt, field, csum)
    return bytes(pkt)


def _l4_offset_v4(frame: memoryview) -> tuple[int, int]:
    """(L4 protocol, L4 offset) of an IPv4 packet; validates IHL and fragmentation."""
    n = len(frame)
    if n < 20:
        raise OffloadError(f"truncated IPv4 header ({n} bytes)")
    ihl = (frame[0] & 0x0F) * 4
    if ihl < 20 or ihl > n:
        raise OffloadError(f"bad IPv4 header length {ihl} in {n}-byte packet")
    if (frame[6] << 8 | frame[7]) & 0x3FFF:
        raise OffloadError("IPv4 fragment cannot carry GSO")
    return frame[9], ihl


def _l4_offset_v6(frame: memoryview) -> tuple[int, int]:
    """(L4 protocol, L4 offset) of an IPv6 packet, walking hop-by-hop/routing/dest-opt headers."""
    n = len(frame)
    if n < 40:
        raise OffloadError(f"truncated IPv6 header ({n} bytes)")
    nh, off = frame[6], 40
    for _ in range(8):
        if nh not in _IPV6_EXT:
            return nh, off
        if off + 8 > n:
            raise OffloadError("truncated IPv6 extension header")
        if nh == _IPV6_ROUTING and frame[off + 3]:
            # The pseudo header would need the final destination from the routing header.
            raise OffloadError("IPv6 routing header with segments left is not supported")
        nh, off = frame[off], off + (frame[off + 1] + 1) * 8
    raise OffloadError("too many IPv6 extension headers")


def gso_split(frame: _Bytes, hdr: VirtioNetHdr, mtu: int = 1500) -> list[bytes]:
    """Split one read from an IFF_VNET_HDR TUN into plain IP packets with valid checksums.

    ``hdr`` is the decoded virtio_net_hdr and ``frame`` the IP packet that followed it.

    * GSO_NONE: with NEEDS_CSUM the partial L4 checksum is completed; returns ``[packet]``.
    * TCPV4 / TCPV6 / UDP_L4: the payload is cut into ``gso_size`` pieces (the last may be
      shorter), each with a copy of the headers: IPv4 total length, ID + i and header
      checksum; IPv6 payload length; TCP sequence number + i * gso_size, FIN and PSH only on
      the last segment, CWR only on the first; UDP length; a full L4 checksum.

    The L4 offset comes from the IP header (``hdr.hdr_len`` is only a hint and is ignored);
    with NEEDS_CSUM, ``csum_start``/``csum_offset`` must agree with it. ``mtu`` is the largest
    segment (IP packet) the caller can send on; larger segments raise.

    Raises OffloadError for: empty or truncated packets, IP version not matching gso_type,
    IPv4 IHL < 5, IPv4 fragments, L4 protocol not matching gso_type, TCP data offset outside
    20..60, inconsistent csum_start/csum_offset, unknown or legacy-UFO gso_type, the ECN bit,
    gso_size 0 or 0xFFFF, more than MAX_SEGMENTS segments, segments above ``mtu``.
    """
    mv = memoryview(frame).cast("B") if isinstance(frame, memoryview) else memoryview(frame)
    n = len(mv)
    if n == 0:
        raise OffloadError("empty packet")
    gso_type = hdr.gso_type
    needs_csum = bool(hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
    if gso_type == VIRTIO_NET_HDR_GSO_NONE:
        return [_complete_csum(mv, hdr)] if needs_csum else [bytes(mv)]
    if gso_type & VIRTIO_NET_HDR_GSO_ECN:
        raise OffloadError(f"gso_type {gso_type:#x}: ECN bit not supported")
    version = mv[0] >> 4
    if gso_type == VIRTIO_NET_HDR_GSO_TCPV4:
        ok_version, tcp = version == 4, True
    elif gso_type == VIRTIO_NET_HDR_GSO_TCPV6:
        ok_version, tcp = version == 6, True
    elif gso_type == VIRTIO_NET_HDR_GSO_UDP_L4:
        ok_version, tcp = version in (4, 6), False
    else:
        raise OffloadError(f"unsupported gso_type {gso_type}")
    if not ok_version:
        raise OffloadError(f"gso_type {gso_type} on an IPv{version} packet")
    gso_size = hdr.gso_size
    if gso_size == 0 or gso_size >= 0xFFFF:
        raise OffloadError(f"bad gso_size {gso_size}")

    v4 = version == 4
    proto, l4 = _l4_offset_v4(mv) if v4 else _l4_offset_v6(mv)
    if proto != (_IPPROTO_TCP if tcp else _IPPROTO_UDP):
        raise OffloadError(f"gso_type {gso_type} but L4 protocol {proto}")
    if tcp:
        if l4 + 20 > n:
            raise OffloadError("truncated TCP header")
        l4_hlen = (mv[l4 + 12] >> 4) * 4
        if l4_hlen < 20 or l4_hlen > 60:
            raise OffloadError(f"bad TCP data offset {l4_hlen}")
        csum_off = _TCP_CSUM_OFFSET
    else:
        l4_hlen, csum_off = 8, _UDP_CSUM_OFFSET
    hlen = l4 + l4_hlen
    if hlen > n:
        raise OffloadError(f"truncated L4 header ({n} < {hlen} bytes)")
    if needs_csum and (hdr.csum_start != l4 or hdr.csum_offset != csum_off):
        raise OffloadError(f"csum_start/offset {hdr.csum_start}/{hdr.csum_offset}, L4 at {l4}")
    payload = n - hlen
    nseg = max(1, -(-payload // gso_size))
    if nseg > MAX_SEGMENTS:
        raise OffloadError(f"{nseg} segments exceed {MAX_SEGMENTS}")
    if (biggest := hlen + min(gso_size, payload)) > mtu:
        raise OffloadError(f"segment of {biggest} bytes exceeds mtu {mtu}")

    # Header template with the per-segment fields zeroed; their sums are added back below.
    tmpl = bytearray(mv[:hlen])
    cfield = l4 + csum_off
    tmpl[cfield : cfield + 2] = b"\0\0"
    if v4:
        ip_id = _U16.unpack_from(tmpl, 4)[0]
        tmpl[2:6] = b"\0\0\0\0"
        tmpl[10:12] = b"\0\0"
    else:
        ip_id = 0
    pbase = _pseudo_base(mv[12:20] if v4 else mv[8:40], proto)
    if tcp:
        seq0 = _U32.unpack_from(tmpl, l4 + 4)[0]
        tflags = tmpl[l4 + 13]
        tmpl[l4 + 4 : l4 + 8] = b"\0\0\0\0"
        tmpl[l4 + 13] = 0
    else:
        seq0 = tflags = 0
        tmpl[l4 + 4 : l4 + 6] = b"\0\0"
    # Constant parts of the sums, reduced modulo 0xFFFF (see fold16); all are non-zero, so a
    # residue r of a segment's sum stands for the folded sum (r or 0xFFFF) and the checksum
    # ~fold & 0xFFFF is 0xFFFF - r, or 0 when r == 0.
    ip_sum = int.from_bytes(tmpl[:l4], "big") % 0xFFFF
    l4_sum = (pbase + int.from_bytes(tmpl[l4:], "big")) % 0xFFFF

    out: list[bytes] = []
    last = nseg - 1
    pack16 = _U16.pack_into
    join = b"".join
    from_bytes = int.from_bytes
    for i in range(nseg):
        start = hlen + i * gso_size
        data = mv[start : start + gso_size]
        plen = len(data)
        seglen = hlen + plen
        l4len = seglen - l4
        h = tmpl.copy()
        if v4:
            ident = (ip_id + i) & 0xFFFF
            _U16x2.pack_into(h, 2, seglen, ident)
            r = (ip_sum + seglen + ident) % 0xFFFF
            pack16(h, 10, 0xFFFF - r if r else 0)
        else:
            pack16(h, 4, seglen - 40)
        r = from_bytes(data, "big") % 0xFFFF
        if plen & 1:
            r <<= 8  # the odd byte is padded on the right
        r += l4_sum + l4len
        if tcp:
            seq = (seq0 + i * gso_size) & 0xFFFFFFFF
            flags = tflags
            if i != last:
                flags &= ~(_TCP_FIN | _TCP_PSH)
            if i:
                flags &= ~_TCP_CWR
            _U32.pack_into(h, l4 + 4, seq)
            h[l4 + 13] = flags
            r = (r + (seq >> 16) + (seq & 0xFFFF) + flags) % 0xFFFF
            pack16(h, cfield, 0xFFFF - r if r else 0)
        else:
            pack16(h, l4 + 4, l4len)
            r = (r + l4len) % 0xFFFF
            pack16(h, cfield, 0xFFFF - r if r else 0xFFFF)  # UDP sends 0 as 0xFFFF
        out.append(join((h, data)))
    return out


# --------------------------------------------------------------------------- GRO coalesce


@dataclass
class CoalesceStats:
    """Counters for :func:`gro_coalesce`; pass one instance to accumulate over many batches."""

    packets_in: int = 0
    frames_out: int = 0
    merged: int = 0  # packets appended to an earlier packet's frame
    super_frames: int = 0  # frames written with a GSO header
    bad_csum: int = 0  # candidates left alone because their L4 checksum was wrong


@dataclass(slots=True)
class _Cand:
    """A packet that may be coalesced: parsed once."""

    compat: bytes  # everything that must be equal for a merge besides the flow
    l4: int  # L4 offset (= IPv4/IPv6 header length, no options/extensions)
    hlen: int  # IP + L4 header length
    plen: int  # payload length
    seq: int  # TCP sequence number (0 for UDP)
    psh: bool
    tcp: bool
    v6: bool


@dataclass(slots=True)
class _Item:
    """An output frame that can still grow."""

    index: int
    head: bytes
    cand: _Cand
    next_seq: int
    total: int
    count: int = 1
    psh: bool = False
    valid: bool | None = None  # head L4 checksum verified (None: not yet checked)
    chunks: list[memoryview] | None = None


_FlowKey = tuple[int, bytes, bytes]


def _parse(pkt: bytes, udp: bool) -> tuple[_FlowKey | None, _Cand | None]:
    """Flow key (protocol, addresses, ports) and, for coalescing candidates, the parse.

    A flow key without a candidate means "belongs to that flow but must be written alone";
    it closes the flow's open frame so that per-flow order is kept.
    """
    n = len(pkt)
    if n < 28:
        return None, None
    version = pkt[0] >> 4
    if version == 4:
        ihl = (pkt[0] & 0x0F) * 4
        proto = pkt[9]
        if (proto != _IPPROTO_TCP and proto != _IPPROTO_UDP) or ihl < 20 or n < ihl + 8:
            return None, None
        frag = pkt[6] << 8 | pkt[7]
        if frag & 0x1FFF:
            return None, None  # later fragments carry no ports
        key = (proto, pkt[12:20], pkt[ihl : ihl + 4])
        if ihl != 20 or frag & 0x2000 or (pkt[2] << 8 | pkt[3]) != n:
            return key, None
        ip_compat = pkt[1:2] + pkt[6:7] + pkt[8:9]  # TOS, DF/reserved bits, TTL
        l4, v6 = 20, False
    elif version == 6:
        proto = pkt[6]
        if (proto != _IPPROTO_TCP and proto != _IPPROTO_UDP) or n < 48:
            return None, None  # extension headers are never coalesced
        key = (proto, pkt[8:40], pkt[40:44])
        if (pkt[4] << 8 | pkt[5]) + 40 != n:
            return key, None
        ip_compat = bytes((pkt[0], pkt[1] & 0xF0, pkt[7]))  # version/TC, hop limit
        l4, v6 = 40, True
    else:
        return None, None
    if proto == _IPPROTO_TCP:
        if n < l4 + 20:
            return key, None
        off_byte = pkt[l4 + 12]
        l4_hlen = (off_byte >> 4) * 4
        flags = pkt[l4 + 13]
        if (
            l4_hlen < 20
            or l4 + l4_hlen >= n  # no payload
            or off_byte & 0x0F
            or (flags != _TCP_ACK and flags != _TCP_ACK | _TCP_PSH)
        ):
            return key, None
        hlen = l4 + l4_hlen
        # ack, data offset, window, urgent pointer and options must all be identical
        compat = ip_compat + pkt[l4 + 8 : l4 + 13] + pkt[l4 + 14 : l4 + 16] + pkt[l4 + 18 : hlen]
        seq = int.from_bytes(pkt[l4 + 4 : l4 + 8], "big")
        return key, _Cand(compat, l4, hlen, n - hlen, seq, flags != _TCP_ACK, True, v6)
    hlen = l4 + 8
    if not udp or n <= hlen or (pkt[l4 + 4] << 8 | pkt[l4 + 5]) != n - l4:
        return key, None
    return key, _Cand(ip_compat, l4, hlen, n - hlen, 0, False, False, v6)


def _l4_csum_ok(pkt: bytes, c: _Cand) -> bool:
    """Verify the full TCP/UDP checksum before the kernel gets to recompute (hide) it."""
    l4 = c.l4
    if not c.tcp and pkt[l4 + 6] == 0 and pkt[l4 + 7] == 0:
        return not c.v6  # IPv4 UDP may go without checksum, IPv6 UDP may not
    body = memoryview(pkt)[l4:]
    n = len(body)
    if n > _BIG:
        r = _sum_big(body) % 0xFFFF
    else:
        r = int.from_bytes(body, "big") % 0xFFFF
        if n & 1:
            r <<= 8
    addrs = pkt[8:40] if c.v6 else pkt[12:20]
    r += int.from_bytes(addrs, "big") + (_IPPROTO_TCP if c.tcp else _IPPROTO_UDP) + n
    # The pseudo header makes the sum non-zero, so "folds to 0xFFFF" == "divisible by 0xFFFF".
    return r % 0xFFFF == 0


def _build(item: _Item) -> tuple[VirtioNetHdr, bytes]:
    """Assemble a merged frame and its CHECKSUM_PARTIAL header."""
    c = item.cand
    l4 = c.l4
    buf = bytearray(item.head)
    for chunk in item.chunks or ():
        buf += chunk
    total = len(buf)
    if c.v6:
        _U16.pack_into(buf, 4, total - 40)
        addrs = buf[8:40]
    else:
        _U16.pack_into(buf, 2, total)
        buf[10:12] = b"\0\0"
        _U16.pack_into(buf, 10, checksum(buf[:20]))
        addrs = buf[12:20]
    l4len = total - l4
    if c.tcp:
        if item.psh:
            buf[l4 + 13] |= _TCP_PSH
        proto, csum_off = _IPPROTO_TCP, _TCP_CSUM_OFFSET
        gso_type = VIRTIO_NET_HDR_GSO_TCPV6 if c.v6 else VIRTIO_NET_HDR_GSO_TCPV4
    else:
        _U16.pack_into(buf, l4 + 4, l4len)
        proto, csum_off = _IPPROTO_UDP, _UDP_CSUM_OFFSET
        gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
    _U16.pack_into(buf, l4 + csum_off, fold16(_pseudo_base(addrs, proto) + l4len))
    hdr = VirtioNetHdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, gso_type, c.hlen, c.plen, l4, csum_off)
    return hdr, bytes(buf)


def gro_coalesce(
    packets: list[bytes],
    udp: bool = True,
    max_size: int = 65535,
    stats: CoalesceStats | None = None,
    verify: bool = True,
) -> list[tuple[VirtioNetHdr, bytes]]:
    """Coalesce a batch of plain IP packets into frames for an IFF_VNET_HDR TUN write.

    A packet is appended to the frame of the previous packet of its flow (TCP: addresses and
    ports; UDP: 5-tuple, only if ``udp``) when all of these hold: both are IPv4 without options
    and not fragments, or IPv6 without extension headers; IP lengths match the packet; equal
    TOS/DF/TTL (v4) or traffic class/hop limit (v6); TCP: flags exactly ACK or ACK|PSH, equal
    ACK number, window, data offset and option bytes, and a sequence number continuing the
    frame; a non-empty payload not larger than the frame's first payload (``gso_size``); the
    frame has not ended (a shorter segment or a PSH ends it); the result stays within
    ``max_size`` bytes and MAX_SEGMENTS segments; and both L4 checksums are valid (the kernel
    recomputes them, which would otherwise hide corruption). ``verify=False`` skips that check
    for packets known to be valid, e.g. fresh from :func:`gso_split` (about half the cost).

    Any packet of a flow that is not appended ends that flow's frame, so the output keeps the
    order of every flow; frames appear at the position of their first packet.

    Merged frames get NEEDS_CSUM, gso_type TCPV4/TCPV6/UDP_L4, hdr_len = IP + L4 header,
    gso_size, csum_start = IP header length, csum_offset 16/6, rewritten IP (and UDP) lengths,
    a new IPv4 header checksum, PSH if any merged segment had it, and the folded
    pseudo-header sum in the L4 checksum field. Other packets are returned unchanged with an
    all-zero header. Never raises for malformed packets: they are simply not coalesced.
    """
    out: list[tuple[VirtioNetHdr, bytes]] = []
    open_items: dict[_FlowKey, _Item] = {}
    grown: list[_Item] = []
    bad = merged = 0
    for raw in packets:
        pkt = raw if type(raw) is bytes else bytes(raw)
        key, cand = _parse(pkt, udp)
        if key is None:
            out.append((_ZERO_HDR, pkt))
            continue
        item = open_items.pop(key, None)
        if cand is not None and item is not None:
            ic = item.cand
            if (
                cand.compat == ic.compat  # the key holds the protocol, so tcp == ic.tcp
                and cand.plen <= ic.plen
                and (not cand.tcp or cand.seq == item.next_seq)
                and item.total + cand.plen <= max_size
                and item.count < MAX_SEGMENTS
            ):
                if item.valid is None:
                    item.valid = not verify or _l4_csum_ok(item.head, ic)
                    bad += not item.valid
                if item.valid:
                    if not verify or _l4_csum_ok(pkt, cand):
                        if item.chunks is None:
                            item.chunks = []
                            grown.append(item)
                        item.chunks.append(memoryview(pkt)[cand.hlen :])
                        item.total += cand.plen
                        item.count += 1
                        item.next_seq = (cand.seq + cand.plen) & 0xFFFFFFFF
                        merged += 1
                        if cand.psh:
                            item.psh = True
                        elif cand.plen == ic.plen:
                            open_items[key] = item  # still open
                        continue
                    bad += 1
                    cand = None  # bad checksum: write it alone, unchanged
        out.append((_ZERO_HDR, pkt))
        if cand is not None and not cand.psh:
            open_items[key] = _Item(
                len(out) - 1, pkt, cand, (cand.seq + cand.plen) & 0xFFFFFFFF, len(pkt)
            )
    for item in grown:
        out[item.index] = _build(item)
    if stats is not None:
        stats.packets_in += len(packets)
        stats.frames_out += len(out)
        stats.merged += merged
        stats.super_frames += len(grown)
        stats.bad_csum += bad
    return out
