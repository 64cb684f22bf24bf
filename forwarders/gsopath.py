"""The ``--gso split`` data path: split super-packets, coalesce a whole batch, write frames.

This is what a VPN must do (it needs plain IP packets to encrypt) and what wireguard-go and
tun-rs do (KERNEL-NOTES §3): read frames back to back until the device (or the queue in
front of the writer) is empty or ``--batch`` frames (128) have been read; split every frame
of the batch into plain IP packets; then coalesce the whole batch's packets at once, so that
packets of several flows that interleave across reads (``iperf3 --parallel``) are merged per
flow, as the kernel's GRO would; then write. The per-byte work belongs to the offload engine
(``--engine python|native``, :mod:`tunio.engine`); this module moves frames and counts.
"""

from __future__ import annotations

import argparse
import select
from collections.abc import Sequence

from forwarders.counters import Counters
from forwarders.frameio import read_ready, write_frame, write_wait
from forwarders.options import BATCH
from tunio.engine import get_engine
from tunio.vnethdr import OffloadError


class SplitRelay:
    """Split each frame of a batch into MTU-sized packets, coalesce them all, write."""

    def __init__(self, mtu: int, engine: str = "python", verify: bool = True, batch: int = BATCH):
        self.mtu = mtu
        self.engine = get_engine(engine)
        self.verify = verify
        self.batch = batch
        self._split = self.engine.split_frame
        self._coalesce = self.engine.coalesce_frames

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SplitRelay | None:
        """The relay a gso variant's options ask for, or None (``--gso passthrough``)."""
        if getattr(args, "gso", None) != "split":
            return None
        return cls(args.mtu, args.engine, args.verify, args.batch)

    def split(
        self, frames: Sequence[bytes | memoryview], c: Counters
    ) -> tuple[list[bytes], bytearray]:
        """Plain IP packets from one batch of vnet frames (counted as a batch), and one flag
        byte per packet: 1 when the split computed its L4 checksum itself (see
        :func:`tunio.gsosplit.computes_l4_csum`). A malformed frame is counted and dropped."""
        c.batch(len(frames))
        c.frames_read += len(frames)
        c.bytes_read += sum(map(len, frames))
        split, mtu = self._split, self.mtu
        segments: list[bytes] = []
        trusted = bytearray()
        for frame in frames:
            try:
                segs, own = split(frame, mtu)
            except OffloadError:
                c.malformed += 1
                c.drops += 1
                continue
            segments += segs
            trusted += (b"\x01" if own else b"\x00") * len(segs)
        c.segments_in += len(segments)
        return segments, trusted

    def coalesce(
        self, segments: list[bytes], c: Counters, trusted: bytes | bytearray | None = None
    ) -> list[bytes]:
        """vnet frames (header + packet) ready to write, as few as GRO rules allow; the
        packets flagged in ``trusted`` are not verified again (the split made their
        checksums), every other one is, unless --no-verify."""
        if not segments:
            return []
        frames = self._coalesce(segments, True, 65535, c.gro, self.verify, trusted)
        c.frames_out += len(frames)
        return frames

    def process(self, frames: Sequence[bytes | memoryview], c: Counters) -> list[bytes]:
        """One batch: split every frame, then coalesce all their packets together."""
        segments, trusted = self.split(frames, c)
        return self.coalesce(segments, c, trusted)

    def relay(self, frames: Sequence[bytes | memoryview], dst: int, c: Counters) -> None:
        """Process one batch and write its frames to a blocking ``dst``."""
        for out in self.process(frames, c):
            write_frame(dst, out, c)

    def pump_nonblocking(self, src: int, dst: int, c: Counters) -> None:
        """A thread's relay between O_NONBLOCK fds: wait until ``src`` is readable, read what
        is there (up to ``batch`` frames), process it as one batch, write, repeat."""
        readable = select.poll()
        readable.register(src, select.POLLIN)
        writable = select.poll()
        writable.register(dst, select.POLLOUT)
        while True:
            frames = read_ready(src, self.batch, c)
            if not frames:
                readable.poll()
                continue
            for out in self.process(frames, c):
                write_wait(dst, out, c, writable)
