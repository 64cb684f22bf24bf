"""The virtio_net_hdr that precedes every read and write on an IFF_VNET_HDR TUN device.

A TUN device opened with IFF_VNET_HDR and an offload mask (TUNSETOFFLOAD) hands the reader
up to 64 KB TCP/UDP "super-packets" preceded by a 10-byte ``virtio_net_hdr`` and accepts the
same on write (see ../shared/KERNEL-NOTES.md §2.4, §2.5 and §3). This module is the codec for
that header (:class:`VirtioNetHdr`), its flag and gso_type values, and the packet-format
numbers that :mod:`tunio.gsosplit` and :mod:`tunio.grocoalesce` share. Pure code, no I/O.

Anything malformed raises :class:`OffloadError`; a forwarder drops and counts such packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "MAX_SEGMENTS",
    "TCP_ACK",
    "TCP_CSUM_OFFSET",
    "TCP_CWR",
    "TCP_FIN",
    "TCP_PSH",
    "UDP_CSUM_OFFSET",
    "VIRTIO_NET_HDR_F_DATA_VALID",
    "VIRTIO_NET_HDR_F_NEEDS_CSUM",
    "VIRTIO_NET_HDR_GSO_ECN",
    "VIRTIO_NET_HDR_GSO_NONE",
    "VIRTIO_NET_HDR_GSO_TCPV4",
    "VIRTIO_NET_HDR_GSO_TCPV6",
    "VIRTIO_NET_HDR_GSO_UDP",
    "VIRTIO_NET_HDR_GSO_UDP_L4",
    "VNET_HDR_LEN",
    "BytesLike",
    "OffloadError",
    "VirtioNetHdr",
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

# Packet-format numbers the split and the coalesce both need.
IPPROTO_TCP = 6
IPPROTO_UDP = 17
# csum_offset values: where the checksum field sits in the L4 header.
TCP_CSUM_OFFSET = 16
UDP_CSUM_OFFSET = 6
TCP_FIN = 0x01
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_CWR = 0x80

BytesLike = bytes | bytearray | memoryview

_HDR = struct.Struct("<BBHHHH")


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
