"""GRO coalesce: a batch of plain IP packets -> as few IFF_VNET_HDR TUN writes as possible.

:func:`gro_coalesce` is the pure-Python engine (no I/O): the send half of ``--gso split`` in
:mod:`forwarders.gsopath`; :class:`CoalesceStats` holds its counters. Its docstring is the
contract another engine must keep.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tunio.csum import CHUNKED_ABOVE, checksum, chunked_sum, fold16, pseudo_addr_sum
from tunio.vnethdr import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    MAX_SEGMENTS,
    TCP_ACK,
    TCP_CSUM_OFFSET,
    TCP_PSH,
    UDP_CSUM_OFFSET,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VirtioNetHdr,
)

__all__ = ["CoalesceStats", "gro_coalesce"]

_U16 = struct.Struct(">H")

_ZERO_HDR = VirtioNetHdr()


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
        if (proto != IPPROTO_TCP and proto != IPPROTO_UDP) or ihl < 20 or n < ihl + 8:
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
        if (proto != IPPROTO_TCP and proto != IPPROTO_UDP) or n < 48:
            return None, None  # extension headers are never coalesced
        key = (proto, pkt[8:40], pkt[40:44])
        if (pkt[4] << 8 | pkt[5]) + 40 != n:
            return key, None
        ip_compat = bytes((pkt[0], pkt[1] & 0xF0, pkt[7]))  # version/TC, hop limit
        l4, v6 = 40, True
    else:
        return None, None
    if proto == IPPROTO_TCP:
        if n < l4 + 20:
            return key, None
        off_byte = pkt[l4 + 12]
        l4_hlen = (off_byte >> 4) * 4
        flags = pkt[l4 + 13]
        if (
            l4_hlen < 20
            or l4 + l4_hlen >= n  # no payload
            or off_byte & 0x0F
            or (flags != TCP_ACK and flags != TCP_ACK | TCP_PSH)
        ):
            return key, None
        hlen = l4 + l4_hlen
        # ack, data offset, window, urgent pointer and options must all be identical
        compat = ip_compat + pkt[l4 + 8 : l4 + 13] + pkt[l4 + 14 : l4 + 16] + pkt[l4 + 18 : hlen]
        seq = int.from_bytes(pkt[l4 + 4 : l4 + 8], "big")
        return key, _Cand(compat, l4, hlen, n - hlen, seq, flags != TCP_ACK, True, v6)
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
    if n > CHUNKED_ABOVE:
        r = chunked_sum(body) % 0xFFFF
    else:
        r = int.from_bytes(body, "big") % 0xFFFF
        if n & 1:
            r <<= 8
    addrs = pkt[8:40] if c.v6 else pkt[12:20]
    r += int.from_bytes(addrs, "big") + (IPPROTO_TCP if c.tcp else IPPROTO_UDP) + n
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
            buf[l4 + 13] |= TCP_PSH
        proto, csum_off = IPPROTO_TCP, TCP_CSUM_OFFSET
        gso_type = VIRTIO_NET_HDR_GSO_TCPV6 if c.v6 else VIRTIO_NET_HDR_GSO_TCPV4
    else:
        _U16.pack_into(buf, l4 + 4, l4len)
        proto, csum_off = IPPROTO_UDP, UDP_CSUM_OFFSET
        gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
    _U16.pack_into(buf, l4 + csum_off, fold16(pseudo_addr_sum(addrs, proto) + l4len))
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

    Contract for any engine: ``packets`` holds bytes (other bytes-like objects are copied)
    and is not modified; the result is a new list of (header, frame) pairs, never longer than
    ``packets``, in which every input packet's payload appears exactly once. With ``stats``,
    its counters are increased (never reset), see :class:`CoalesceStats`: ``packets_in`` by
    ``len(packets)``, ``frames_out`` by the length of the result, ``merged`` by the packets
    appended to an earlier frame, ``super_frames`` by the frames given a GSO header and
    ``bad_csum`` by the candidates refused for a wrong L4 checksum.
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
