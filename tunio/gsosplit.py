"""GSO split: one super-packet read from an IFF_VNET_HDR TUN -> plain IP packets.

:func:`gso_split` is the pure-Python engine (no I/O): the receive half of ``--gso split``
in :mod:`forwarders.gsopath`. Its docstring is the contract another engine must keep.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from tunio.csum import checksum, fold_plan, pseudo_addr_sum
from tunio.vnethdr import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    MAX_SEGMENTS,
    TCP_CSUM_OFFSET,
    TCP_CWR,
    TCP_FIN,
    TCP_PSH,
    UDP_CSUM_OFFSET,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    BytesLike,
    OffloadError,
    VirtioNetHdr,
)

__all__ = ["computes_l4_csum", "gso_split"]

# IPv6 extension headers gso_split walks over: hop-by-hop, routing, destination options.
_IPV6_EXT = frozenset((0, 43, 60))
_IPV6_ROUTING = 43

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def _complete_csum(frame: memoryview, hdr: VirtioNetHdr) -> bytes:
    """GSO_NONE with NEEDS_CSUM: finish the checksum the kernel left partial."""
    start, field = hdr.csum_start, hdr.csum_start + hdr.csum_offset
    if field + 2 > len(frame):
        raise OffloadError(f"checksum field at {field} outside {len(frame)}-byte packet")
    pkt = bytearray(frame)
    initial = _U16.unpack_from(pkt, field)[0]
    pkt[field : field + 2] = b"\0\0"
    csum = checksum(memoryview(pkt)[start:], initial)
    if csum == 0 and hdr.csum_offset == UDP_CSUM_OFFSET:
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


def computes_l4_csum(hdr: VirtioNetHdr) -> bool:
    """True when every packet :func:`gso_split` returns for a frame with this header carries an
    L4 checksum computed here, from the bytes read, with nothing taken from the frame's
    checksum field: a GSO super-packet (gso_type not NONE) with NEEDS_CSUM.

    Such a frame had no sender's checksum to check (the kernel hands over a partial one,
    CHECKSUM_PARTIAL), so summing a segment's bytes again when coalescing could only confirm
    the split's own arithmetic: the forwarder marks these segments ``trusted`` for
    :func:`tunio.grocoalesce.gro_coalesce`. Not for GSO_NONE: its completed checksum starts
    from the partial sum and csum_start/csum_offset the frame brought, so it is verified.
    Not for a GSO frame without NEEDS_CSUM either: its checksum field may have held a
    complete checksum made elsewhere.
    """
    return bool(hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) and hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE


def gso_split(frame: BytesLike, hdr: VirtioNetHdr, mtu: int = 1500) -> list[bytes]:
    """Split one read from an IFF_VNET_HDR TUN into plain IP packets with valid checksums.

    ``hdr`` is the decoded virtio_net_hdr and ``frame`` the IP packet that followed it.

    * GSO_NONE: with NEEDS_CSUM the partial L4 checksum is completed; returns ``[packet]``.
    * TCPV4 / TCPV6 / UDP_L4: the payload is cut into ``gso_size`` pieces (the last may be
      shorter), each with a copy of the headers: IPv4 total length, ID + i and header
      checksum; IPv6 payload length; TCP sequence number + i * gso_size, FIN and PSH only on
      the last segment, CWR only on the first; UDP length; a full L4 checksum.

    The L4 offset comes from the IP header (``hdr.hdr_len`` is only a hint and is ignored);
    with NEEDS_CSUM, ``csum_start``/``csum_offset`` must agree with it. ``mtu`` is the largest
    segment (IP packet) the caller can send on; larger segments raise (a GSO_NONE packet is
    returned whatever its size).

    Contract for any engine: ``frame`` may be bytes, bytearray or a memoryview (e.g. the read
    buffer past the header) and is not modified; the result is a new list of at least one new
    ``bytes`` object, in payload order. Nothing is counted here: the caller counts segments,
    malformed frames and drops. Whether the returned checksums were computed entirely here
    depends on the header alone: :func:`computes_l4_csum`.

    The only exception is OffloadError, raised for: empty or truncated packets, IP version
    not matching gso_type, IPv4 IHL < 5, IPv4 fragments, L4 protocol not matching gso_type,
    TCP data offset outside 20..60, inconsistent csum_start/csum_offset, unknown or
    legacy-UFO gso_type, the ECN bit, gso_size 0 or 0xFFFF, more than MAX_SEGMENTS segments,
    segments above ``mtu``.
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
    if proto != (IPPROTO_TCP if tcp else IPPROTO_UDP):
        raise OffloadError(f"gso_type {gso_type} but L4 protocol {proto}")
    if tcp:
        if l4 + 20 > n:
            raise OffloadError("truncated TCP header")
        l4_hlen = (mv[l4 + 12] >> 4) * 4
        if l4_hlen < 20 or l4_hlen > 60:
            raise OffloadError(f"bad TCP data offset {l4_hlen}")
        csum_off = TCP_CSUM_OFFSET
    else:
        l4_hlen, csum_off = 8, UDP_CSUM_OFFSET
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

    # The constant parts of every segment's headers, the per-segment fields zeroed. The sums
    # below are residues modulo 0xFFFF (see fold16); each true sum is non-zero (the IPv4
    # version nibble, the pseudo header's protocol), so a residue r stands for the folded
    # sum (r or 0xFFFF) and the checksum ~fold & 0xFFFF is 0xFFFF - r, or 0 when r == 0.
    tmpl = bytearray(mv[:hlen])
    cfield = l4 + csum_off
    tmpl[cfield : cfield + 2] = b"\0\0"
    if v4:
        ip_id = _U16.unpack_from(tmpl, 4)[0]
        tmpl[2:6] = b"\0\0\0\0"
        tmpl[10:12] = b"\0\0"
    else:
        ip_id = 0
    if tcp:
        seq0 = _U32.unpack_from(tmpl, l4 + 4)[0]
        tflags = tmpl[l4 + 13]
        tmpl[l4 + 4 : l4 + 8] = b"\0\0\0\0"
        tmpl[l4 + 13] = 0
    else:
        seq0 = tflags = 0
        tmpl[l4 + 4 : l4 + 6] = b"\0\0"
    ip_sum = int.from_bytes(tmpl[:l4], "big") % 0xFFFF
    l4_sum = (
        pseudo_addr_sum(mv[12:20] if v4 else mv[8:40], proto) + int.from_bytes(tmpl[l4:], "big")
    ) % 0xFFFF
    # One struct packs a whole segment header: the per-segment fields between the template's
    # constant byte runs (the "gaps").
    pack = _layout(v4, tcp, l4, hlen).pack
    g0, g1 = (bytes(tmpl[0:2]), bytes(tmpl[6:10])) if v4 else (bytes(tmpl[0:4]), b"")
    g2 = bytes(tmpl[12 if v4 else 6 : l4 + 4])
    g3, g4 = bytes(tmpl[l4 + 8 : l4 + 13]), bytes(tmpl[l4 + 14 : l4 + 16])
    g5 = bytes(tmpl[l4 + 18 : hlen])

    out: list[bytes] = []
    append = out.append
    last = nseg - 1
    # The TCP flags of each segment: FIN/PSH only on the last, CWR only on the first.
    mid = tflags & ~(TCP_FIN | TCP_PSH | TCP_CWR)
    if nseg == 1:
        seg_flags = [tflags]
    else:
        seg_flags = [tflags & ~(TCP_FIN | TCP_PSH), *[mid] * (nseg - 2), tflags & ~TCP_CWR]
    from_bytes = int.from_bytes
    # What stays the same for every segment but the last: payload length, fold steps, IP and
    # L4 lengths, and the sums' constant parts (the L4 length is in the pseudo header, and
    # for UDP in the UDP header too).
    plen = min(gso_size, payload)
    plan = fold_plan(plen)
    seglen = hlen + plen
    l4len = seglen - l4
    ip_len = seglen if v4 else seglen - 40
    l4_const = l4_sum + (l4len if tcp else 2 * l4len)
    ip_const = ip_sum + seglen
    seq = seq0
    for i in range(nseg):
        start = hlen + i * gso_size
        data = mv[start : start + gso_size]
        if i == last and len(data) != plen:
            plen = len(data)
            plan = fold_plan(plen)
            seglen = hlen + plen
            l4len = seglen - l4
            ip_len = seglen if v4 else seglen - 40
            l4_const = l4_sum + (l4len if tcp else 2 * l4len)
            ip_const = ip_sum + seglen
        # Payload residue; the header's constant words are in l4_sum, its fields added below.
        x = from_bytes(data, "big")
        for h, mask in plan:
            x = (x >> h) + (x & mask)
        if plen & 1:
            x <<= 8  # the odd byte is padded on the right
        if tcp:
            flags = seg_flags[i]
            r = (x + l4_const + seq + flags) % 0xFFFF  # 2**16 = 1: seq needs no split
            csum = 0xFFFF - r if r else 0
            if v4:
                ident = (ip_id + i) & 0xFFFF
                ri = (ip_const + ident) % 0xFFFF
                head = pack(
                    g0, ip_len, ident, g1, 0xFFFF - ri if ri else 0,
                    g2, seq, g3, flags, g4, csum, g5,
                )  # fmt: skip
            else:
                head = pack(g0, ip_len, g2, seq, g3, flags, g4, csum, g5)
            seq = (seq + gso_size) & 0xFFFFFFFF
        else:
            r = (x + l4_const) % 0xFFFF
            csum = 0xFFFF - r if r else 0xFFFF  # UDP sends 0 as 0xFFFF
            if v4:
                ident = (ip_id + i) & 0xFFFF
                ri = (ip_const + ident) % 0xFFFF
                head = pack(g0, ip_len, ident, g1, 0xFFFF - ri if ri else 0, g2, l4len, csum)
            else:
                head = pack(g0, ip_len, g2, l4len, csum)
        append(head + data)
    return out


@lru_cache(maxsize=32)
def _layout(v4: bool, tcp: bool, l4: int, hlen: int) -> struct.Struct:
    """The struct of one segment's IP + L4 header: per-segment fields between constant gaps.

    IPv4: gap, total length, ID, gap, header checksum; IPv6: gap, payload length; then up to
    the L4 fields: gap; TCP: sequence number, gap (ack, data offset), flags, gap (window),
    checksum, gap (urgent pointer, options); UDP: length, checksum.
    """
    ip = "2sHH4sH" if v4 else "4sH"
    mid = f"{l4 + 4 - (12 if v4 else 6)}s"
    l4_fmt = f"I5sB2sH{hlen - l4 - 18}s" if tcp else "HH"
    return struct.Struct(">" + ip + mid + l4_fmt)
