"""trio forwarders: non-blocking fds, ``wait_readable``/``wait_writable``, one task per
direction, optionally a memory channel, a buffer pool, or a framed stream between.

Shared by every ``async-*`` variant; a variant module only states which it is:
``gso`` (IFF_VNET_HDR + offload, ``--gso passthrough|split``), ``channel`` (reader task ->
``trio.open_memory_channel(--depth)`` -> writer task), ``pool`` (the channel carries
indices of preallocated buffers filled with ``readv``: no per-packet allocation) or
``framed`` (see :mod:`forwarders.framed`). With ``--gso split`` every pump hands the
split path (:mod:`forwarders.gsopath`) all frames waiting (read, queued or filled) as one
batch. SIGINT/SIGTERM write the counters and exit 0, SIGUSR1 writes them and goes on; a
task that raises cancels the others
and the forwarder exits 70 with its traceback, as a sync one does.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import trio

from forwarders.counters import SNAPSHOT_SIGNAL, Counters, Forwarder
from forwarders.framed import Framed, TunCodec
from forwarders.frameio import DeviceGone, read_ready
from forwarders.gsopath import SplitRelay
from forwarders.nbio import YIELD_EVERY, read_nb, readinto_nb, write_nb
from forwarders.options import (
    ArgumentParser,
    add_gso_options,
    add_spin_option,
    base_parser,
)
from forwarders.runner import EXIT_WORKER_CRASHED, configure_devices, report_crash
from forwarders.variant import Variant
from tunio.argtypes import positive_int
from tunio.tun import MAX_FRAME, open_tun

Pump = Callable[[int, int, Counters], Awaitable[None]]


@dataclass(frozen=True)
class AsyncVariant(Variant):
    """An async variant: its registry name and which features it uses."""

    channel: bool = False  # reader task -> memory channel -> writer task
    pool: bool = False  # a channel of indices of preallocated buffers
    framed: bool = False  # the device as a framed packet stream

    mode: ClassVar[str] = "async"

    @property
    def channel_kind(self) -> str:
        if self.framed:
            return "framed"
        if self.pool:
            return "pool"
        return "channel" if self.channel else "-"

    def build_parser(self) -> ArgumentParser:
        p = base_parser(self.name, self.description)
        if self.gso:
            add_gso_options(p)
        if self.channel:
            p.add_option(
                "--depth",
                type=positive_int,
                default=1024,
                metavar="N",
                help="memory channel depth per direction",
            )
        if self.pool:
            p.add_option(
                "--pool",
                type=positive_int,
                default=256,
                metavar="N",
                help="preallocated buffers per direction",
            )
        add_spin_option(p)  # last: a control, not one of the variant's own
        return p

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.build_parser().parse_args(argv)
        devs = [
            open_tun(n, vnet_hdr=self.gso, offload=self.gso, nonblocking=True)
            for n in (args.iface1, args.iface2)
        ]
        fwd = Forwarder(self.name, args, devs)
        if self.gso:
            fwd.extra["gso"] = args.gso
            if args.gso == "split":
                fwd.extra["split"] = {
                    "engine": args.engine,
                    "batch": args.batch,
                    "verify": args.verify,
                }
        if args.configure:
            configure_devices(args)
        try:
            code = trio.run(self._run, fwd, args)
        except Exception as exc:  # a task raised: the nursery has cancelled the others
            report_crash(fwd, exc)
            code = EXIT_WORKER_CRASHED
        fwd.write_stats()
        sys.stdout.flush()
        return code

    async def _run(self, fwd: Forwarder, args: argparse.Namespace) -> int:
        split = SplitRelay.from_args(args) if self.gso else None
        code = 0
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, SNAPSHOT_SIGNAL) as signals:
            async with trio.open_nursery() as nursery:

                async def direction(name: str, src: int, dst: int) -> None:
                    nonlocal code
                    try:
                        await self._pump(fwd, args, name, src, dst, split)
                    except DeviceGone as exc:
                        fwd.exit_reason = f"device gone: {exc}"
                        code = 1
                        nursery.cancel_scope.cancel()

                async def on_signal() -> None:
                    async for signum in signals:
                        if signum == SNAPSHOT_SIGNAL:
                            fwd.write_stats()
                            continue
                        nursery.cancel_scope.cancel()
                        return

                d1, d2 = fwd.devices
                nursery.start_soon(direction, "1to2", d1.fd, d2.fd)
                nursery.start_soon(direction, "2to1", d2.fd, d1.fd)
                nursery.start_soon(on_signal)
        return code

    async def _pump(
        self,
        fwd: Forwarder,
        args: argparse.Namespace,
        direction: str,
        src: int,
        dst: int,
        split: SplitRelay | None,
    ) -> None:
        c = fwd.counters(direction)
        if self.framed:
            codec = TunCodec(split)
            await Framed(src, codec, c).forward_to(Framed(dst, codec, c))
        elif self.pool:
            await _pooled(fwd, args, direction, src, dst, split, c)
        elif self.channel:
            await _channelled(fwd, args, direction, src, dst, split, c)
        else:
            await _direct(src, dst, split, c)


async def _deliver(dst: int, frames: list[bytes], split: SplitRelay, c: Counters) -> None:
    """Split and coalesce one batch of frames, then write the result."""
    for out in split.process(frames, c):
        await write_nb(dst, out, c)


async def _direct(src: int, dst: int, split: SplitRelay | None, c: Counters) -> None:
    n = 0
    while True:
        frame = await read_nb(src, MAX_FRAME, c)
        if split is None:
            await write_nb(dst, frame, c)
            n += 1
        else:  # the frames already waiting join this one's batch
            frames = [frame, *read_ready(src, split.batch - 1, c)]
            await _deliver(dst, frames, split, c)
            n += len(frames)
        if n >= YIELD_EVERY:
            n = 0
            await trio.lowlevel.checkpoint()


async def _channelled(
    fwd: Forwarder,
    args: argparse.Namespace,
    direction: str,
    src: int,
    dst: int,
    split: SplitRelay | None,
    c: Counters,
) -> None:
    send, recv = trio.open_memory_channel[bytes](args.depth)
    stats = {"depth": args.depth, "high_water": 0, "full_waits": 0}
    fwd.extra.setdefault("channels", {})[direction] = stats

    async def reader() -> None:
        n = 0
        while True:
            data = await read_nb(src, MAX_FRAME, c)
            n += 1
            if n % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            try:
                send.send_nowait(data)
            except trio.WouldBlock:
                stats["full_waits"] += 1
                await send.send(data)
            used = send.statistics().current_buffer_used
            if used > stats["high_water"]:
                stats["high_water"] = used

    async def writer() -> None:
        async for data in recv:
            if split is None:
                await write_nb(dst, data, c)
                continue
            batch = [data]  # and whatever else is queued, up to the batch bound
            while len(batch) < split.batch:
                try:
                    batch.append(recv.receive_nowait())
                except trio.WouldBlock:
                    break
            await _deliver(dst, batch, split, c)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        nursery.start_soon(writer)


async def _pooled(
    fwd: Forwarder,
    args: argparse.Namespace,
    direction: str,
    src: int,
    dst: int,
    split: SplitRelay | None,
    c: Counters,
) -> None:
    buffers = [bytearray(MAX_FRAME) for _ in range(args.pool)]
    views = [memoryview(b) for b in buffers]
    free_send, free_recv = trio.open_memory_channel[int](args.pool)
    for i in range(args.pool):
        free_send.send_nowait(i)
    full_send, full_recv = trio.open_memory_channel[tuple[int, int]](args.pool)
    stats = {"buffers": args.pool, "buffer_bytes": MAX_FRAME, "exhausted_waits": 0}
    fwd.extra.setdefault("pools", {})[direction] = stats

    async def reader() -> None:
        reads = 0
        while True:
            reads += 1
            if reads % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            try:
                i = free_recv.receive_nowait()
            except trio.WouldBlock:
                stats["exhausted_waits"] += 1
                i = await free_recv.receive()
            size = await readinto_nb(src, buffers[i], c)
            full_send.send_nowait((i, size))  # cannot block: at most pool entries in flight

    async def writer() -> None:
        async for first in full_recv:
            if split is None:
                i, n = first
                await write_nb(dst, views[i][:n], c)
                free_send.send_nowait(i)
                continue
            filled = [first]  # and whatever else is filled, up to the batch bound
            while len(filled) < split.batch:
                try:
                    filled.append(full_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            segments, trusted = split.split([views[i][:n] for i, n in filled], c)
            for i, _ in filled:  # the segments are copies: the buffers can be reused
                free_send.send_nowait(i)
            for out in split.coalesce(segments, c, trusted):
                await write_nb(dst, out, c)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        nursery.start_soon(writer)
