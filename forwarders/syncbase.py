"""Blocking forwarders: one (or ``--thread N``) OS thread per direction, optional channel.

Shared by every ``sync-*`` variant; a variant module only states which of these it is:
``gso`` (IFF_VNET_HDR + offload, ``--gso passthrough|split``) and ``channel`` (a reader
thread feeding a bounded queue that a writer thread drains, ``--depth``).
With ``--thread N`` each direction has N workers; ``--multiqueue`` gives each its own
queue fd (IFF_MULTI_QUEUE), otherwise they share one fd (the Rust "concurrent" variant).
With ``--gso split`` (:mod:`forwarders.gsopath`) a direct worker polls O_NONBLOCK fds and
handles all frames waiting as one batch; a channel's writer batches what is queued.
"""

from __future__ import annotations

import argparse
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from forwarders.counters import Counters, Forwarder
from forwarders.frameio import pump_blocking, read_frame, write_frame
from forwarders.gsopath import SplitRelay
from forwarders.options import (
    ArgumentParser,
    add_gso_options,
    add_spin_option,
    add_thread_options,
    base_parser,
)
from forwarders.runner import Worker, run_threads
from forwarders.variant import Variant
from tunio.argtypes import positive_int
from tunio.tun import MAX_FRAME, TunDevice, open_tun

ReadFn = Callable[[], bytes]


@dataclass(frozen=True)
class SyncVariant(Variant):
    """A blocking variant: its registry name and which features it uses."""

    channel: bool = False  # reader thread -> bounded queue -> writer thread

    mode: ClassVar[str] = "sync"

    @property
    def channel_kind(self) -> str:
        return "queue" if self.channel else "-"

    def build_parser(self) -> ArgumentParser:
        p = base_parser(self.name, self.description)
        add_thread_options(p)
        if self.gso:
            add_gso_options(p)
        if self.channel:
            p.add_option(
                "--depth",
                type=positive_int,
                default=1024,
                metavar="N",
                help="bounded queue depth per direction",
            )
        add_spin_option(p)  # last: a control, not one of the variant's own
        return p

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.build_parser().parse_args(argv)
        queues = args.thread if args.multiqueue else 1
        split = self.gso and args.gso == "split"
        # The split path reads what is there without blocking (a batch ends when the device
        # is empty); a channel's reader thread keeps blocking reads, its writer batches.
        nonblocking = split and not self.channel
        devs = [
            open_tun(
                name, vnet_hdr=self.gso, offload=self.gso, queues=queues, nonblocking=nonblocking
            )
            for name in (args.iface1, args.iface2)
        ]
        fwd = Forwarder(self.name, args, devs)
        fwd.extra["threads_per_direction"] = args.thread
        fwd.extra["multiqueue"] = bool(args.multiqueue)
        if self.gso:
            fwd.extra["gso"] = args.gso
        if split:
            fwd.extra["split"] = {
                "engine": args.engine,
                "batch": args.batch,
                "verify": args.verify,
            }
        workers: list[Worker] = []
        for direction, src, dst in (("1to2", devs[0], devs[1]), ("2to1", devs[1], devs[0])):
            for i in range(args.thread):
                workers.extend(self._workers(fwd, args, direction, src, dst, i))
        return run_threads(fwd, workers)

    def _workers(
        self,
        fwd: Forwarder,
        args: argparse.Namespace,
        direction: str,
        src: TunDevice,
        dst: TunDevice,
        i: int,
    ) -> list[Worker]:
        """The threads of one direction's ``i``-th worker, named ``1to2-0`` (a pump) or
        ``1to2-0-rd`` / ``1to2-0-wr`` (a channel's reader and writer)."""
        src_fd = src.fds[i % len(src.fds)]
        dst_fd = dst.fds[i % len(dst.fds)]
        c = fwd.counters(direction)
        split = SplitRelay.from_args(args) if self.gso else None
        if not self.channel:
            name = f"{direction}-{i}"
            if split is None:
                return [(name, lambda: pump_blocking(src_fd, dst_fd, c, MAX_FRAME))]
            return [(name, lambda: split.pump_nonblocking(src_fd, dst_fd, c))]
        q: queue.Queue[bytes] = queue.Queue(maxsize=args.depth)
        qstats = {"depth": args.depth, "high_water": 0, "full_waits": 0}
        fwd.extra.setdefault("queues", {})[f"{direction}-{i}"] = qstats
        return [
            (f"{direction}-{i}-rd", lambda: _reader(src_fd, q, c, qstats)),
            (f"{direction}-{i}-wr", lambda: _writer(dst_fd, q, c, split)),
        ]


def _reader(src: int, q: queue.Queue[bytes], c: Counters, qstats: dict[str, int]) -> None:
    while True:
        data = read_frame(src, MAX_FRAME, c)
        if data is None:
            continue
        if q.full():
            qstats["full_waits"] += 1
        q.put(data)
        size = q.qsize()
        if size > qstats["high_water"]:
            qstats["high_water"] = size


def _writer(dst: int, q: queue.Queue[bytes], c: Counters, split: SplitRelay | None) -> None:
    get, get_nowait = q.get, q.get_nowait
    while True:
        data = get()
        if split is None:
            write_frame(dst, data, c)
            continue
        batch = [data]  # and whatever else is queued, up to the batch bound
        while len(batch) < split.batch:
            try:
                batch.append(get_nowait())
            except queue.Empty:
                break
        split.relay(batch, dst, c)
