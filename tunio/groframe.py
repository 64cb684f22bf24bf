"""One frame of :func:`tunio.grocoalesce.gro_coalesce` while it is built: what a packet must
match to join it (:func:`compat_mask`), the L4 checksum check before a merge hides a bad
one (:func:`l4_csum_ok`), and the merged frame's CHECKSUM_PARTIAL header and parts
(:func:`build`). Pure, no I/O; the merge loop itself stays in :mod:`tunio.grocoalesce`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

from tunio.csum import FOLD_UP_TO, checksum, chunked_sum, fold16, fold_plan, pseudo_addr_sum
from tunio.vnethdr import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_CSUM_OFFSET,
    TCP_PSH,
    UDP_CSUM_OFFSET,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VirtioNetHdr,
)

_U16 = struct.Struct(">H")


@dataclass(slots=True)
class Item:
    """An output frame that can still grow: its head packet, what a packet must match to
    join it, and what has joined so far."""

    index: int  # position in the output
    head: bytes
    compat: int  # the head's header with what may differ masked out (see compat_mask)
    mask: int  # that mask
    l4: int  # L4 offset (IPv4/IPv6 header length: no options or extension headers)
    hlen: int  # IP + L4 header length
    gso: int  # the head's payload length: the frame's gso_size
    tcp: bool
    v6: bool
    next_seq: int  # TCP sequence number that continues the frame (UDP: unused)
    total: int  # frame length so far
    own: int  # the head's ``trusted`` flag: its checksum was computed by gso_split
    count: int = 1
    psh: bool = False
    valid: bool | None = None  # head L4 checksum accepted (None: not yet checked)
    chunks: list[bytes] | None = None  # packets appended (their payloads join the frame)


# One call for what the merge loop needs from an IPv4 header (first byte, total length,
# flags + fragment offset, protocol; read before the version is known, from >= 28 bytes)
# and from a TCP header at its sequence number (sequence number, data offset, flags).
V4_FIELDS = struct.Struct(">BxHxxHxB")
TCP_FIELDS = struct.Struct(">I4xBB")
# The fast path's fields of a TCP/IPv4 packet without options: total length, sequence
# number, flags.
FAST_FIELDS = struct.Struct(">2xH20xI5xB")


@lru_cache(maxsize=64)
def compat_mask(v6: bool, tcp: bool, hlen: int) -> int:
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


def l4_csum_ok(pkt: bytes, l4: int, tcp: bool, v6: bool) -> bool:
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


def build(item: Item) -> tuple[VirtioNetHdr, list[bytes]]:
    """A merged frame's CHECKSUM_PARTIAL header and its parts (new IP + L4 header, payloads),
    for one ``b"".join``."""
    l4, hlen, tcp, v6 = item.l4, item.hlen, item.tcp, item.v6
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
    vnet = VirtioNetHdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, gso_type, hlen, item.gso, l4, csum_off)
    # Every packet of a frame has the head's header length: one C-level pass slices off
    # the headers (a bytes slice is cheaper to make than a memoryview).
    payloads = map(itemgetter(slice(hlen, None)), [head, *(item.chunks or ())])
    return vnet, [bytes(hdr), *payloads]
