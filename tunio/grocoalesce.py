"""GRO coalesce: a batch of plain IP packets -> as few IFF_VNET_HDR TUN writes as possible.

:func:`gro_coalesce` is the pure-Python engine (no I/O): the send half of ``--gso split`` in
:mod:`forwarders.gsopath`; :class:`CoalesceStats` holds its counters. Its docstring is the
contract another engine must keep.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from tunio.groframe import FAST_FIELDS, TCP_FIELDS, V4_FIELDS, Item, build, compat_mask, l4_csum_ok
from tunio.vnethdr import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    MAX_SEGMENTS,
    TCP_ACK,
    TCP_PSH,
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
        vnet, parts = build(item)
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
        vnet, parts = build(item)
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
) -> tuple[list[bytes], list[Item], tuple[int, int, int, int]]:
    """The merge loop: packets in output order, the items that grew and the counts
    (merged, bad, verified, trusted).

    A grown item's frame replaces its head packet at ``out[item.index]``. Each packet is
    parsed inline (a function call and a result tuple per packet cost more than the
    parse): first its flow key (addresses and ports; one table per protocol), then whether
    it is a coalescing candidate. A packet with a key but not a candidate must be written
    alone; it still ends its flow's open frame, so that per-flow order is kept.

    The packet a TCP stream is made of (IPv4, continuing its flow's open frame, no checksum
    to check) first tries a shorter path that reads only what the compat mask leaves out;
    it commits nothing unless the merge goes through, and any other packet, or one that
    fails a check there, is parsed in full by the general path (same outcome, same counts).
    """
    if max_size > 0xFFFF:
        raise ValueError("max_size must be at most 65535")
    flags = _trust_flags(trusted, len(packets))
    verify = bool(verify)  # counted as 0 or 1 below
    if set(map(type, packets)) <= {bytes}:  # one C-level pass in the usual case
        pkts = cast("Sequence[bytes]", packets)
    else:
        pkts = [p if type(p) is bytes else bytes(p) for p in packets]
    out: list[bytes] = []
    append = out.append
    # The open frame of each flow (one table per protocol), looked up without removing it:
    # every way out of the loop body leaves there the flow's frame that can still grow, or
    # nothing.
    open_tcp: dict[bytes, Item] = {}
    open_udp: dict[bytes, Item] = {}
    grown: list[Item] = []
    bad = merged = verified = skipped = 0
    masks: dict[int, int] = {}
    from_bytes = int.from_bytes
    ipv4_fields = V4_FIELDS.unpack_from
    tcp_fields = TCP_FIELDS.unpack_from
    fast_fields = FAST_FIELDS.unpack_from
    for pkt, own in zip(pkts, flags, strict=True):
        n = len(pkt)
        if n < 28:
            append(pkt)
            continue
        # Fast path, the usual packet of a TCP/IPv4 stream: it continues its flow's open
        # frame and needs no checksum check. Its header equals the frame head's (masked
        # compat) and the head passed every candidate check, so only what the mask leaves
        # out remains to check. Any other packet takes the general path below.
        if (
            pkt[0] == 0x45
            and pkt[9] == IPPROTO_TCP
            and (own or not verify)
            and (item := open_tcp.get(pkt[12:24])) is not None
            and (item.valid or (item.valid is None and (item.own or not verify)))
        ):
            hlen = item.hlen
            plen = n - hlen  # the head's hlen is at least 40: fast_fields may read
            if 0 < plen <= item.gso:
                ip_len, seq, tflags = fast_fields(pkt)
            else:
                ip_len = 0  # not for the fast path
            if (
                ip_len == n
                and from_bytes(pkt[:hlen], "big") & item.mask == item.compat
                and (tflags == TCP_ACK or tflags == TCP_ACK | TCP_PSH)
                and seq == item.next_seq
                and item.total + plen <= max_size
                and item.count < MAX_SEGMENTS
            ):
                if item.valid is None:
                    item.valid = True
                    skipped += verify
                skipped += verify
                if item.chunks is None:
                    item.chunks = [pkt]
                    grown.append(item)
                else:
                    item.chunks.append(pkt)
                item.total += plen
                item.count += 1
                item.next_seq = (seq + plen) & 0xFFFFFFFF
                merged += 1
                if tflags != TCP_ACK:
                    item.psh = True
                    del open_tcp[pkt[12:24]]
                elif plen != item.gso:
                    del open_tcp[pkt[12:24]]  # a short segment ends the frame
                continue
        b0, ip_len, frag, proto = ipv4_fields(pkt)
        if b0 >> 4 == 4:
            ihl = (b0 & 0x0F) * 4
            if (proto != IPPROTO_TCP and proto != IPPROTO_UDP) or ihl < 20 or n < ihl + 8:
                append(pkt)
                continue
            if frag & 0x1FFF:
                append(pkt)  # later fragments carry no ports
                continue
            if ihl == 20:
                key = pkt[12:24]
                cand = not frag & 0x2000 and ip_len == n
            else:
                key = pkt[12:20] + pkt[ihl : ihl + 4]
                cand = False
            l4, v6 = 20, False
        elif b0 >> 4 == 6:
            proto = pkt[6]
            if (proto != IPPROTO_TCP and proto != IPPROTO_UDP) or n < 48:
                append(pkt)  # extension headers are never coalesced
                continue
            key = pkt[8:44]
            cand = (pkt[4] << 8 | pkt[5]) + 40 == n
            l4, v6 = 40, True
        else:
            append(pkt)
            continue
        tcp = proto == IPPROTO_TCP
        flows = open_tcp if tcp else open_udp
        item = flows.get(key)
        if tcp:
            if cand and n >= l4 + 20:
                seq, off_byte, tflags = tcp_fields(pkt, l4 + 4)
                hlen = l4 + (off_byte >> 4) * 4
                cand = (
                    hlen >= l4 + 20
                    and hlen < n  # a payload
                    and not off_byte & 0x0F
                    and (tflags == TCP_ACK or tflags == TCP_ACK | TCP_PSH)
                )
                psh = tflags != TCP_ACK
            else:
                cand = False
        else:
            hlen = l4 + 8
            cand = cand and udp and n > hlen and (pkt[l4 + 4] << 8 | pkt[l4 + 5]) == n - l4
            psh = False
            seq = 0
        if not cand:
            if item is not None:
                del flows[key]  # written alone, it ends the flow's frame
            append(pkt)
            continue
        mkey = hlen | v6 << 8 | tcp << 9
        mask = masks.get(mkey)
        if mask is None:
            mask = masks[mkey] = compat_mask(v6, tcp, hlen)
        compat = from_bytes(pkt[:hlen], "big") & mask
        plen = n - hlen
        if item is not None and (
            compat == item.compat  # the table holds the protocol: tcp is the item's
            and plen <= item.gso
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
                    item.valid = l4_csum_ok(item.head, l4, tcp, v6)
                    verified += 1
                    bad += not item.valid
            if item.valid:
                if not verify:
                    ok = True
                elif own:
                    ok = True
                    skipped += 1
                else:
                    ok = l4_csum_ok(pkt, l4, tcp, v6)
                    verified += 1
                if ok:
                    if item.chunks is None:
                        item.chunks = [pkt]
                        grown.append(item)
                    else:
                        item.chunks.append(pkt)
                    item.total += plen
                    item.count += 1
                    item.next_seq = (seq + plen) & 0xFFFFFFFF
                    merged += 1
                    if psh:
                        item.psh = True
                        del flows[key]
                    elif plen != item.gso:
                        del flows[key]  # a short segment ends the frame
                    continue
                bad += 1
                del flows[key]
                append(pkt)  # bad checksum: write it alone, unchanged
                continue
        append(pkt)
        if not psh:
            flows[key] = Item(
                len(out) - 1, pkt, compat, mask, l4, hlen, plen, tcp, v6,
                (seq + plen) & 0xFFFFFFFF, n, own,
            )  # fmt: skip
        elif item is not None:
            del flows[key]
    return out, grown, (merged, bad, verified, skipped)
