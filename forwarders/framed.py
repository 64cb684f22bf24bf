"""The device as a framed packet stream, like tokio-util's ``Framed`` in the Rust reference.

:class:`Framed` is an async iterator of packets (``async for pkt in framed``) and a sink
(``await framed.send(pkt)``, ``await framed.flush()``). A :class:`TunCodec` owns the wire
format: on a vnet device with ``--gso split`` decoding splits a batch of super-packets (all
frames waiting, up to ``--batch``) into plain IP packets and encoding coalesces the buffered
packets into as few frames as GRO allows;
with ``--gso passthrough`` (or no vnet header) frames go through untouched.
"""

from __future__ import annotations

from collections import deque

import trio

from forwarders.counters import Counters
from forwarders.frameio import read_ready
from forwarders.gsopath import SplitRelay
from forwarders.nbio import YIELD_EVERY, read_nb, write_nb
from tunio.tun import MAX_FRAME

Flags = bytes | bytearray  # one byte per packet


class TunCodec:
    """Frames <-> packets: split/coalesce with a :class:`SplitRelay`, else pass through."""

    def __init__(self, split: SplitRelay | None) -> None:
        self.split = split
        # frames read back to back into one decode (the split path's batch), else 1
        self.batch = split.batch if split is not None else 1

    def decode(self, frames: list[bytes], c: Counters) -> tuple[list[bytes], Flags]:
        """Packets carried by a batch of frames read from the device, and one flag byte per
        packet: 1 when the split computed its L4 checksum itself (see SplitRelay.split)."""
        if self.split is None:
            return frames, bytes(len(frames))
        return self.split.split(frames, c)

    def encode(
        self, packets: list[bytes], c: Counters, trusted: Flags | None = None
    ) -> list[bytes]:
        """Frames to write for the buffered packets, in order (``trusted``: their flags)."""
        if self.split is None or not packets:
            return packets
        return self.split.coalesce(packets, c, trusted)


class Framed:
    """One fd seen as a stream of packets in and a buffered sink of packets out.

    Each packet travels with its decode flag (checksum computed by this process's split),
    which :meth:`forward_to` hands on to the sink so that its encode need not verify it.
    """

    def __init__(self, fd: int, codec: TunCodec, counters: Counters) -> None:
        self.fd = fd
        self.codec = codec
        self.c = counters
        self._in: deque[tuple[bytes, int]] = deque()
        self._out: list[bytes] = []
        self._out_trusted = bytearray()

    def __aiter__(self) -> Framed:
        return self

    async def __anext__(self) -> bytes:
        return (await self.receive())[0]

    async def receive(self) -> tuple[bytes, int]:
        """The next packet and its flag (non-zero: checksum computed by the split)."""
        while not self._in:
            frames = [await read_nb(self.fd, MAX_FRAME, self.c)]
            if self.codec.batch > 1:  # the frames already waiting join the batch
                frames += read_ready(self.fd, self.codec.batch - 1, self.c)
            packets, trusted = self.codec.decode(frames, self.c)
            self._in.extend(zip(packets, trusted, strict=True))
        return self._in.popleft()

    @property
    def buffered(self) -> int:
        """Decoded packets not yet handed out."""
        return len(self._in)

    async def send(self, packet: bytes, trusted: int = 0) -> None:
        """Buffer a packet; ``trusted`` non-zero: its checksum was computed by the split."""
        self._out.append(packet)
        self._out_trusted.append(1 if trusted else 0)

    async def flush(self) -> None:
        out, trusted = self._out, self._out_trusted
        self._out, self._out_trusted = [], bytearray()
        for frame in self.codec.encode(out, self.c, trusted):
            await write_nb(self.fd, frame, self.c)

    async def forward_to(self, sink: Framed) -> None:
        """Copy this stream into ``sink``, flushing whenever no decoded packet is pending
        (so the packets of a whole batch of reads are coalesced together)."""
        n = 0
        while True:
            packet, trusted = await self.receive()
            await sink.send(packet, trusted)
            if not self.buffered:
                await sink.flush()
            n += 1
            if n % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
