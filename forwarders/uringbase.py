"""io_uring forwarders: one ring per direction in C (:mod:`tunio._uring`), Python around it.

Shared by the ``uring-*`` variants. Each direction's worker thread creates its ring (a ring
has one submitting thread) with ``--depth`` buffers, registered with the kernel. A completed
read becomes a write of the same buffer to the other device, a completed write a read
again: ``--reads multishot`` (the default) keeps one multishot read in flight that takes
the next free buffer per packet, ``--reads single`` one read per buffer. Completions are
handled ``--batch`` at a time per submit; one ``io_uring_enter`` submits them and, when none
is ready, also waits. The C loop runs with the GIL released until :data:`BUDGET` frames are
done or :data:`TIMEOUT_MS` pass, then the worker turns the ring's counters into its own
(frames, bytes, drops, gso sizes) and the ring's system calls into ``extra["uring"]``; the
stats file, written on SIGINT/SIGTERM, takes the ring's totals at that moment.

With ``--gso split`` the ring hands the worker up to ``--batch`` completed reads at once
(copied out of the ring's buffers), the offload engine splits and coalesces them
(:mod:`forwarders.gsopath`), and the ring writes the resulting frames, ``--batch`` per submit.
A malformed frame is a counted drop there as everywhere; a failed write (EINVAL, EIO) is
counted by the ring; EBADFD and friends end the worker (:class:`DeviceGone`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from forwarders.counters import SPIN_NS_ENV, Counters, Forwarder, InjectedFault, spin_ns
from forwarders.frameio import DeviceGone
from forwarders.gsopath import SplitRelay
from forwarders.options import ArgumentParser, add_gso_options, base_parser
from forwarders.runner import Worker, run_threads
from forwarders.variant import Variant
from tunio.argtypes import positive_int
from tunio.tun import MAX_FRAME, TunDevice, open_tun
from tunio.uring import unavailable

DEPTH = 64  # reads in flight per direction
BATCH = 32  # completions per submit
BUDGET = 4096  # frames per call into C before the counters are brought up to date
TIMEOUT_MS = 50  # ... or this long: the stats file lags the ring by at most this much
SYNC_S = TIMEOUT_MS / 1000

# Counters the ring keeps that a forwarder's Counters have too.
_PLAIN = ("bytes", "drops", "read_errors")


class RingCounters:
    """Brings one direction's :class:`Counters` up to date with its ring's totals, and
    keeps the ring's own figures (system calls, submissions) in ``info``."""

    def __init__(self, ring: Any, c: Counters, info: dict[str, Any]) -> None:
        self.ring = ring
        self.c = c
        self.info = info
        self.last: dict[str, Any] = {}
        self.synced = time.monotonic()
        self.lock = threading.Lock()

    def update(self) -> None:
        with self.lock:
            self._update()

    def final(self) -> None:
        """From the main thread, as the stats file is written: the ring's latest totals
        (read while its thread may still be counting; each is a whole 64-bit word)."""
        with contextlib.suppress(InjectedFault):  # the worker raises it, not the stats file
            self.update()

    def _update(self) -> None:
        st: dict[str, Any] = self.ring.stats()
        last, c = self.last, self.c
        for key in _PLAIN:
            setattr(c, key, getattr(c, key) + st[key] - last.get(key, 0))
        before = last.get("write_errors", {})
        for err, n in st["write_errors"].items():
            if n != before.get(err, 0):
                name = errno.errorcode.get(err, str(err))
                c.write_errors[name] = c.write_errors.get(name, 0) + n - before.get(err, 0)
        if c.gso_hist is not None:
            old = last.get("gso_hist") or [0] * len(st["gso_hist"])
            for i, (now, then) in enumerate(zip(st["gso_hist"], old, strict=True)):
                c.gso_hist[i] += now - then
        self.last = st
        self.synced = time.monotonic()
        packets, enters, submits = st["packets"], st["enters"], st["submits"]
        self.info.update(
            syscalls=enters,
            submissions=submits,
            waits=st["waits"],
            operations=st["sqes"],
            completions=st["cqes"],
            completions_per_submission=st["cqes"] / submits if submits else None,
            syscalls_per_packet=enters / packets if packets else None,
        )
        # last: with the fault hook (forwarders.counters) this is the line that raises
        c.packets += packets - last.get("packets", 0)

    def due(self) -> bool:
        return time.monotonic() - self.synced >= SYNC_S


def gone(err: int) -> DeviceGone:
    return DeviceGone(f"[Errno {err}] {os.strerror(err)}")


def pump(ring: Any, sync: RingCounters) -> None:
    """A direction's loop: the C loop forwards, Python counts between its calls."""
    while True:
        err = ring.pump(BUDGET, TIMEOUT_MS)
        sync.update()
        if err:
            raise gone(err)


def pump_split(ring: Any, relay: SplitRelay, c: Counters, sync: RingCounters) -> None:
    """A direction's loop with ``--gso split``: a batch of frames from the ring, split and
    coalesced by the engine, written by the ring."""
    read, write, process, batch = ring.read_frames, ring.write_frames, relay.process, relay.batch
    while True:
        frames = read(batch, TIMEOUT_MS)
        if frames:
            out = process(frames, c)
            if out:
                write(out)
        if not frames or sync.due():
            sync.update()
        if not frames and ring.gone:  # what was read before it went is forwarded first
            raise gone(ring.gone)


@dataclass(frozen=True)
class UringVariant(Variant):
    """An io_uring variant: a ring per direction, with or without vnet/offload."""

    mode: ClassVar[str] = "uring"

    @property
    def channel_kind(self) -> str:
        return "-"  # a buffer goes from its read straight to its write

    def unavailable(self) -> str | None:
        return unavailable()

    def build_parser(self) -> ArgumentParser:
        p = base_parser(self.name, self.description)
        p.add_option(
            "--depth",
            type=positive_int,
            default=DEPTH,
            metavar="N",
            help="reads kept in flight per direction, each into its own registered buffer",
        )
        p.add_option(
            "--batch",
            type=positive_int,
            default=None,
            metavar="N",
            help="completions handled per submit (one io_uring_enter); with --gso split "
            f"also the most frames split and coalesced together (default {BATCH}, at most "
            "--depth)",
        )
        p.add_option(
            "--reads",
            choices=["multishot", "single"],
            default="multishot",
            help="multishot: one multishot read takes the next free buffer per packet "
            "(Linux 6.7; single reads where the kernel lacks it); single: --depth reads, "
            "one per buffer (every packet wakes all of those waiting on an empty device)",
        )
        p.add_option(
            "--buffers",
            choices=["registered", "plain"],
            default="registered",
            help="registered: the buffers are registered with the ring once (READ_FIXED, "
            "WRITE_FIXED); plain: each operation maps its buffer itself",
        )
        if self.gso:
            add_gso_options(p, batch=False)
        p.add_check(lambda a: self.unavailable())
        p.add_check(
            lambda a: (
                f"--batch {a.batch} exceeds --depth {a.depth}: a ring never has more "
                "completions than buffers"
                if a.batch is not None and a.batch > a.depth
                else None
            )
        )
        return p

    def main(self, argv: Sequence[str] | None = None) -> int:
        parser = self.build_parser()
        args = parser.parse_args(argv)
        if spin_ns(args):  # its writes happen in C: a spin would be recorded, never done
            parser.error(f"{SPIN_NS_ENV} cannot spin in a uring variant (it writes in C)")
        if args.batch is None:
            args.batch = min(BATCH, args.depth)
        devs = [
            open_tun(name, vnet_hdr=self.gso, offload=self.gso)
            for name in (args.iface1, args.iface2)
        ]
        fwd = Forwarder(self.name, args, devs)
        fwd.extra["uring"] = {
            "depth": args.depth,
            "batch": args.batch,
            "reads": args.reads,
            "buffers": args.buffers,
        }
        if self.gso:
            fwd.extra["gso"] = args.gso
        if self.gso and args.gso == "split":
            fwd.extra["split"] = {"engine": args.engine, "batch": args.batch, "verify": args.verify}
        workers: list[Worker] = [
            (f"{direction}-0", self._worker(fwd, args, direction, src, dst))
            for direction, src, dst in (("1to2", devs[0], devs[1]), ("2to1", devs[1], devs[0]))
        ]
        return run_threads(fwd, workers)

    def _worker(
        self,
        fwd: Forwarder,
        args: argparse.Namespace,
        direction: str,
        src: TunDevice,
        dst: TunDevice,
    ) -> Any:
        c = fwd.counters(direction)
        relay = (
            SplitRelay(args.mtu, args.engine, args.verify, args.batch)
            if (self.gso and args.gso == "split")
            else None
        )
        info: dict[str, Any] = {}
        fwd.extra["uring"][direction] = info

        def run() -> None:
            from tunio import _uring

            # made here: the thread that makes a ring is the one that submits to it
            ring = _uring.Ring(
                src.fd,
                dst.fd,
                args.depth,
                args.batch,
                MAX_FRAME,
                src.vnet_hdr,
                relay is not None,
                args.reads == "multishot",
                args.buffers == "registered",
            )
            reads = "multishot" if ring.multishot else "single"
            info.update(setup=ring.setup, registered=ring.registered, reads=reads)
            sync = RingCounters(ring, c, info)
            fwd.before_stats.append(sync.final)
            if relay is None:
                pump(ring, sync)
            else:
                pump_split(ring, relay, c, sync)

        return run
