"""The ``--gso split`` data path: split each super-packet, coalesce again, write the frames.

This is what a VPN must do (it needs plain IP packets to encrypt); the pure work is in
:mod:`tunio.gsosplit` and :mod:`tunio.grocoalesce`; this module only moves frames and counts.
"""

from __future__ import annotations

from forwarders.common import Counters, read_frame, write_frame
from tunio.grocoalesce import gro_coalesce
from tunio.gsosplit import gso_split
from tunio.tun import MAX_FRAME
from tunio.vnethdr import VNET_HDR_LEN, OffloadError, VirtioNetHdr


class SplitRelay:
    """Split one vnet frame into MTU-sized packets, coalesce them, write the result."""

    def __init__(self, mtu: int) -> None:
        self.mtu = mtu

    def split(self, frame: bytes | memoryview, c: Counters) -> list[bytes]:
        """Plain IP packets from one vnet frame; a malformed frame is counted and dropped."""
        try:
            hdr = VirtioNetHdr.unpack(frame)
            segments = gso_split(memoryview(frame)[VNET_HDR_LEN:], hdr, self.mtu)
        except OffloadError:
            c.malformed += 1
            c.drops += 1
            return []
        c.segments_in += len(segments)
        return segments

    @staticmethod
    def coalesce(segments: list[bytes], c: Counters) -> list[bytes]:
        """vnet frames (header + packet) ready to write, as few as GRO rules allow."""
        frames = [hdr.pack() + packet for hdr, packet in gro_coalesce(segments)]
        c.frames_out += len(frames)
        return frames

    def relay(self, frame: bytes | memoryview, dst: int, c: Counters) -> None:
        for out in self.coalesce(self.split(frame, c), c):
            write_frame(dst, out, c)

    def pump_blocking(self, src: int, dst: int, c: Counters) -> None:
        while True:
            frame = read_frame(src, MAX_FRAME, c)
            if frame is not None:
                self.relay(frame, dst, c)
