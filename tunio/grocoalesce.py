"""GRO coalesce: a batch of plain IP packets -> as few IFF_VNET_HDR TUN writes as possible.

:func:`gro_coalesce` is the pure-Python engine (no I/O): the send half of ``--gso split`` in
:mod:`forwarders.gsopath`; :class:`CoalesceStats` holds its counters. Its docstring is the
contract another engine must keep.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from tunio.csum import FOLD_UP_TO, checksum, chunked_sum, fold16, fold_plan, pseudo_addr_sum
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
    BytesLike,
    VirtioNetHdr,
)

__all__ = ["CoalesceStats", "gro_coalesce", "gro_coalesce_frames"]

_U16 = struct.Struct(">H")

_ZERO_HDR = VirtioNetHdr()
_ZERO_WIRE = _ZERO_HDR.pack()


@dataclass
class CoalesceStats:
    """Counters for :func:`gro_coalesce`; pass one instance to accumulate over many batches."""

    packets_in: int = 0
    frames_out: int = 0
    merged: int = 0  # packets appended to an earlier packet's frame
    super_frames: int = 0  # frames written with a GSO header
    bad_csum: int = 0  # candidates left alone because their L4 checksum was wrong
    # The L4 checksum checks a merge needs (a frame's first packet is checked when a second
    # one would join it, every later packet when it would join): summed over the packet
    # (bad ones included, so bad_csum <= csum_verified), or skipped because the caller
    # marked the packet as checksummed by gso_split itself (``trusted``). Neither counts
    # with verify=False.
    csum_verified: int = 0
    csum_trusted: int = 0

    def add(
        self,
        packets_in: int,
        frames_out: int,
        merged: int,
        super_frames: int,
        bad: int,
        verified: int = 0,
        trusted: int = 0,
    ) -> None:
        """Increase every counter by one batch's counts."""
        self.packets_in += packets_in
        self.frames_out += frames_out
        self.merged += merged
        self.super_frames += super_frames
        self.bad_csum += bad
        self.csum_verified += verified
        self.csum_trusted += trusted

    def merge(self, other: CoalesceStats) -> None:
        """Add another instance's counters (e.g. another worker's) to these."""
        self.add(
            other.packets_in,
            other.frames_out,
            other.merged,
            other.super_frames,
            other.bad_csum,
            other.csum_verified,
            other.csum_trusted,
        )


# A packet that may be coalesced, parsed once: a plain tuple (built per packet, so cheaper
# than a dataclass) of
#   compat  int: the header with what may differ masked out (see _compat_mask)
#   l4      L4 offset (= IPv4/IPv6 header length, no options/extensions)
#   hlen    IP + L4 header length
#   plen    payload length
#   seq     TCP sequence number (0 for UDP)
#   psh     TCP PSH set
#   tcp, v6
_Cand = tuple[int, int, int, int, int, bool, bool, bool]


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
    chunks: list[memoryview] | None = None  # payloads appended to the head packet
    own: int = 0  # the head's checksum was computed by gso_split (its ``trusted`` flag)


# (protocol, addresses + ports): ports follow the addresses unless IPv4 options sit between.
_FlowKey = tuple[int, bytes]

_U32 = struct.Struct(">I")


@lru_cache(maxsize=64)
def _compat_mask(v6: bool, tcp: bool, hlen: int) -> int:
    """AND-mask over int.from_bytes(pkt[:hlen]) that keeps what must be equal for a merge.

    Zeroed: what differs between segments of one flow (lengths, IPv4 ID and checksum, TCP
    sequence number, flags and checksum, UDP length and checksum) and the IPv6 flow label.
    Kept: IPv4 TOS, DF/reserved bits and TTL, IPv6 traffic class and hop limit, TCP ACK
    number, data offset, window, urgent pointer and options; plus bytes that are equal for
    all candidates of a flow anyway (version, fragment offset 0, protocol, addresses, ports).
    Two candidates with different header lengths never compare equal: the first byte (the IP
    version) is non-zero, so the longer header gives the larger integer.
    """
    keep = bytearray(b"\xff" * hlen)
    if v6:
        keep[1] = 0xF0  # traffic class low nibble; the flow label is not compared
        keep[2:6] = bytes(4)  # flow label, payload length
        l4 = 40
    else:
        keep[2:6] = bytes(4)  # total length, ID
        keep[10:12] = bytes(2)  # header checksum
        l4 = 20
    if tcp:
        keep[l4 + 4 : l4 + 8] = bytes(4)  # sequence number
        keep[l4 + 13] = 0  # flags: ACK or ACK|PSH, PSH handled on its own
        keep[l4 + 16 : l4 + 18] = bytes(2)  # checksum
    else:
        keep[l4 + 4 : l4 + 8] = bytes(4)  # length, checksum
    return int.from_bytes(keep, "big")


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
        if ihl != 20:
            return (proto, pkt[12:20] + pkt[ihl : ihl + 4]), None
        key = (proto, pkt[12:24])
        if frag & 0x2000 or (pkt[2] << 8 | pkt[3]) != n:
            return key, None
        l4, v6 = 20, False
    elif version == 6:
        proto = pkt[6]
        if (proto != IPPROTO_TCP and proto != IPPROTO_UDP) or n < 48:
            return None, None  # extension headers are never coalesced
        key = (proto, pkt[8:44])
        if (pkt[4] << 8 | pkt[5]) + 40 != n:
            return key, None
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
        compat = int.from_bytes(pkt[:hlen], "big") & _compat_mask(v6, True, hlen)
        seq = _U32.unpack_from(pkt, l4 + 4)[0]
        return key, (compat, l4, hlen, n - hlen, seq, flags != TCP_ACK, True, v6)
    hlen = l4 + 8
    if not udp or n <= hlen or (pkt[l4 + 4] << 8 | pkt[l4 + 5]) != n - l4:
        return key, None
    compat = int.from_bytes(pkt[:hlen], "big") & _compat_mask(v6, False, hlen)
    return key, (compat, l4, hlen, n - hlen, 0, False, False, v6)


def _l4_csum_ok(pkt: bytes, l4: int, tcp: bool, v6: bool) -> bool:
    """Verify the full TCP/UDP checksum before the kernel gets to recompute (hide) it."""
    if not tcp and pkt[l4 + 6] == 0 and pkt[l4 + 7] == 0:
        return not v6  # IPv4 UDP may go without checksum, IPv6 UDP may not
    # The addresses sit right before the L4 header (no options or extension headers here), at
    # an even offset: one sum covers them and the whole L4 segment.
    body = pkt[8:] if v6 else pkt[12:]
    n = len(body)
    if n > FOLD_UP_TO:
        x = chunked_sum(body)
    else:
        x = int.from_bytes(body, "big")
        for h, mask in fold_plan(n):
            x = (x >> h) + (x & mask)
        if n & 1:
            x <<= 8
    x += (IPPROTO_TCP if tcp else IPPROTO_UDP) + len(pkt) - l4
    # The pseudo header makes the sum non-zero, so "folds to 0xFFFF" == "divisible by 0xFFFF".
    return x % 0xFFFF == 0


def _build(item: _Item) -> tuple[VirtioNetHdr, list[bytes | memoryview]]:
    """A merged frame's CHECKSUM_PARTIAL header and its parts (new IP + L4 header, payloads),
    for one ``b"".join``: each payload byte is copied once."""
    _, l4, hlen, plen, _, _, tcp, v6 = item.cand
    head = item.head
    hdr = bytearray(head[:hlen])
    total = item.total
    if v6:
        _U16.pack_into(hdr, 4, total - 40)
        addrs = hdr[8:40]
    else:
        _U16.pack_into(hdr, 2, total)
        hdr[10:12] = b"\0\0"
        _U16.pack_into(hdr, 10, checksum(hdr[:20]))
        addrs = hdr[12:20]
    l4len = total - l4
    if tcp:
        if item.psh:
            hdr[l4 + 13] |= TCP_PSH
        proto, csum_off = IPPROTO_TCP, TCP_CSUM_OFFSET
        gso_type = VIRTIO_NET_HDR_GSO_TCPV6 if v6 else VIRTIO_NET_HDR_GSO_TCPV4
    else:
        _U16.pack_into(hdr, l4 + 4, l4len)
        proto, csum_off = IPPROTO_UDP, UDP_CSUM_OFFSET
        gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
    _U16.pack_into(hdr, l4 + csum_off, fold16(pseudo_addr_sum(addrs, proto) + l4len))
    vnet = VirtioNetHdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, gso_type, hlen, plen, l4, csum_off)
    return vnet, [hdr, memoryview(head)[hlen:], *(item.chunks or ())]


def gro_coalesce(
    packets: Sequence[BytesLike],
    udp: bool = True,
    max_size: int = 65535,
    stats: CoalesceStats | None = None,
    verify: bool = True,
    trusted: BytesLike | None = None,
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
    recomputes them, which would otherwise hide corruption).

    Which checksums are summed: ``trusted`` (a bytes-like object with one byte per packet,
    or None for all zero) marks with a non-zero byte the packets whose L4 checksum this
    process computed itself, i.e. segments of a frame for which the split reported so
    (:func:`tunio.gsosplit.computes_l4_csum`); their check is skipped, as summing the bytes
    again could only confirm the split's own arithmetic. Every other packet (it arrived with
    a checksum made elsewhere) is verified. ``verify=False`` skips every check.

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
    appended to an earlier frame, ``super_frames`` by the frames given a GSO header,
    ``bad_csum`` by the candidates refused for a wrong L4 checksum, ``csum_verified`` and
    ``csum_trusted`` by the checksum checks made and skipped. ``max_size`` above 65535 (more
    than an IP length field holds) or a ``trusted`` whose length in bytes is not
    ``len(packets)`` raises ValueError before anything is counted.
    """
    out, grown, counts = _coalesce(packets, udp, max_size, verify, trusted)
    result = [(_ZERO_HDR, pkt) for pkt in out]
    for item in grown:
        vnet, parts = _build(item)
        result[item.index] = (vnet, b"".join(parts))
    if stats is not None:
        stats.add(len(packets), len(result), counts[0], len(grown), *counts[1:])
    return result


def gro_coalesce_frames(
    packets: Sequence[BytesLike],
    udp: bool = True,
    max_size: int = 65535,
    stats: CoalesceStats | None = None,
    verify: bool = True,
    trusted: BytesLike | None = None,
) -> list[bytes]:
    """:func:`gro_coalesce`, each frame returned as the bytes one TUN write takes: the packed
    virtio_net_hdr followed by the packet (same frames, same order, same counters)."""
    out, grown, counts = _coalesce(packets, udp, max_size, verify, trusted)
    result = [_ZERO_WIRE + pkt for pkt in out]
    for item in grown:
        vnet, parts = _build(item)
        result[item.index] = b"".join((vnet.pack(), *parts))
    if stats is not None:
        stats.add(len(packets), len(result), counts[0], len(grown), *counts[1:])
    return result


def _trust_flags(trusted: BytesLike | None, npackets: int) -> BytesLike:
    """``trusted`` as something whose items are the flag bytes (ints), length-checked."""
    if trusted is None:
        return bytes(npackets)
    flags = trusted if type(trusted) is bytes or type(trusted) is bytearray else None
    if flags is None:
        flags = memoryview(trusted).tobytes()  # raw bytes whatever the buffer's format
    if len(flags) != npackets:
        raise ValueError(f"trusted has {len(flags)} flags for {npackets} packets")
    return flags


def _coalesce(
    packets: Sequence[BytesLike],
    udp: bool,
    max_size: int,
    verify: bool,
    trusted: BytesLike | None,
) -> tuple[list[bytes], list[_Item], tuple[int, int, int, int]]:
    """The merge loop: packets in output order, the items that grew and the counts
    (merged, bad, verified, trusted).

    A grown item's frame replaces its head packet at ``out[item.index]``.
    """
    if max_size > 0xFFFF:
        raise ValueError("max_size must be at most 65535")
    flags = _trust_flags(trusted, len(packets))
    out: list[bytes] = []
    open_items: dict[_FlowKey, _Item] = {}
    grown: list[_Item] = []
    bad = merged = verified = skipped = 0
    for raw, own in zip(packets, flags, strict=True):
        pkt = raw if type(raw) is bytes else bytes(raw)
        key, cand = _parse(pkt, udp)
        if key is None:
            out.append(pkt)
            continue
        item = open_items.pop(key, None)
        if cand is not None and item is not None:
            compat, l4, hlen, plen, seq, psh, tcp, v6 = cand
            ic = item.cand
            if (
                compat == ic[0]  # the key holds the protocol, so tcp == the item's tcp
                and plen <= ic[3]
                and (not tcp or seq == item.next_seq)
                and item.total + plen <= max_size
                and item.count < MAX_SEGMENTS
            ):
                if item.valid is None:
                    if not verify:
                        item.valid = True
                    elif item.own:
                        item.valid = True
                        skipped += 1
                    else:
                        item.valid = _l4_csum_ok(item.head, ic[1], ic[6], ic[7])
                        verified += 1
                        bad += not item.valid
                if item.valid:
                    if not verify:
                        ok = True
                    elif own:
                        ok = True
                        skipped += 1
                    else:
                        ok = _l4_csum_ok(pkt, l4, tcp, v6)
                        verified += 1
                    if ok:
                        if item.chunks is None:
                            item.chunks = []
                            grown.append(item)
                        item.chunks.append(memoryview(pkt)[hlen:])
                        item.total += plen
                        item.count += 1
                        item.next_seq = (seq + plen) & 0xFFFFFFFF
                        merged += 1
                        if psh:
                            item.psh = True
                        elif plen == ic[3]:
                            open_items[key] = item  # still open
                        continue
                    bad += 1
                    cand = None  # bad checksum: write it alone, unchanged
        out.append(pkt)
        if cand is not None and not cand[5]:
            open_items[key] = _Item(
                len(out) - 1, pkt, cand, (cand[4] + cand[3]) & 0xFFFFFFFF, len(pkt), own=own
            )
    return out, grown, (merged, bad, verified, skipped)
