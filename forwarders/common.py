"""What every forwarder shares: arguments, counters, the stats file, the run loop.

A forwarder is started as ``python -m forwarders.<module> --iface1 tun11 --ip1 10.0.1.1
--iface2 tun22 --ip2 10.0.2.1 [--mtu N] [--stats FILE] [variant options]``. On SIGINT or
SIGTERM it writes its counters as JSON to ``--stats`` and exits 0. A worker that hits an
unrecoverable error (EBADFD: the device was unregistered) ends; when every worker has
ended the forwarder exits 1. A worker that raises anything else (a bug) ends the whole
forwarder at once, never leaving one direction dead and the other running: its traceback
goes to stderr, the counters to ``--stats``, and the exit status is 70 (EX_SOFTWARE).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from tunio.argtypes import mtu, positive_int
from tunio.engine import engine_arg
from tunio.grocoalesce import CoalesceStats
from tunio.tun import MAX_FRAME, TunDevice, offload_names, set_mtu

# Most frames the --gso split path reads back to back before coalescing their segments:
# wireguard-go's and tun-rs's IdealBatchSize (KERNEL-NOTES §3.1).
BATCH = 128


class ForwarderArgumentError(Exception):
    """Raised instead of exiting when the harness validates arguments."""


@dataclass(frozen=True)
class Option:
    """An option a spec may give a variant, as ``tunbench list`` shows it."""

    flag: str
    metavar: str  # what follows the flag: "N", "passthrough|split", or "" for a switch
    help: str
    default: Any

    @property
    def usage(self) -> str:
        return f"{self.flag} {self.metavar}" if self.metavar else self.flag


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`ForwarderArgumentError` when ``raise_errors`` is set,
    and that knows which of its options belong to the harness and which to the variant."""

    raise_errors = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.harness_flags: list[str] = []
        self.options: list[Option] = []
        self.checks: list[Callable[[argparse.Namespace], str | None]] = []

    def add_check(self, check: Callable[[argparse.Namespace], str | None]) -> None:
        """A rule across options: ``check(parsed)`` returns what is wrong, or None."""
        self.checks.append(check)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, rest = super().parse_known_args(args, namespace)
        for check in self.checks:
            problem = check(parsed)
            if problem:
                self.error(problem)
        return parsed, rest

    def add_harness_argument(self, flag: str, **kwargs: Any) -> None:
        """An argument the harness always passes itself; a spec must not give it."""
        self.add_argument(flag, **kwargs)
        self.harness_flags.append(flag)

    def add_option(self, flag: str, **kwargs: Any) -> None:
        """A variant option: a spec may give it, ``tunbench list`` shows it. A default
        other than None is appended to its help."""
        action = self.add_argument(flag, **kwargs)
        metavar = ""  # a switch takes no value
        if action.nargs != 0:
            if action.default is not None:
                action.help = f"{action.help} (default {action.default})"
            if action.choices is not None:
                metavar = "|".join(str(c) for c in action.choices)
            else:
                metavar = str(action.metavar or action.dest.upper())
        self.options.append(Option(flag, metavar, action.help or "", action.default))

    def error(self, message: str) -> NoReturn:
        if self.raise_errors:
            raise ForwarderArgumentError(message)
        super().error(message)

    def print_help(self, file: Any = None) -> None:
        if self.raise_errors:  # validating a spec: --help would end the forwarder at once
            raise ForwarderArgumentError("--help shows the options and exits; see tunbench list")
        super().print_help(file)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if self.raise_errors:  # any other action that would end the forwarder at once
            raise ForwarderArgumentError(message or f"an option would exit with status {status}")
        super().exit(status, message)


def base_parser(prog: str, description: str) -> ArgumentParser:
    """The arguments every forwarder takes (compatible with the Rust reference's flags)."""
    # No abbreviations: "--mt 9000" must not slip past the harness's reserved --mtu.
    p = ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    p.add_harness_argument("--iface1", default="tun11")
    p.add_harness_argument("--ip1", default="10.0.1.1")
    p.add_harness_argument("--iface2", default="tun22")
    p.add_harness_argument("--ip2", default="10.0.2.1")
    p.add_harness_argument("--mtu", type=mtu, default=1500)
    p.add_harness_argument("--stats", type=Path, default=None, help="write counters here on exit")
    p.add_harness_argument(
        "--configure",
        action="store_true",
        help="standalone use: set MTU, address /24 and up on both devices",
    )
    return p


def add_thread_options(p: ArgumentParser) -> None:
    p.add_option(
        "--thread",
        type=positive_int,
        default=1,
        metavar="N",
        help="threads per direction",
    )
    p.add_option(
        "--multiqueue",
        action="store_true",
        help="give each thread its own queue fd (IFF_MULTI_QUEUE); needs --thread 2 or more",
    )
    # One thread has one queue either way: the flag would silently change nothing.
    p.add_check(
        lambda a: (
            "--multiqueue needs --thread 2 or more (one queue per thread)"
            if a.multiqueue and a.thread < 2
            else None
        )
    )


def add_gso_options(p: ArgumentParser) -> None:
    p.add_option(
        "--gso",
        choices=["passthrough", "split"],
        default="passthrough",
        help="passthrough: relay super-packets and their header; split: segment "
        "and coalesce again (what a VPN does)",
    )
    p.add_option(
        "--engine",
        type=engine_arg,
        default="python",
        metavar="python|native",
        help="with --gso split: who splits and coalesces, the pure-Python engine or the C "
        "one (tunio._native, built by scripts/bootstrap.sh)",
    )
    p.add_option(
        "--batch",
        type=positive_int,
        default=BATCH,
        metavar="N",
        help="with --gso split: most frames read back to back before their packets are "
        "coalesced together",
    )
    p.add_option(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="with --gso split: trust the L4 checksums of the packets being coalesced "
        "that arrived with one of their own (not split from a NEEDS_CSUM super-packet, "
        "whose segments' checksums the split computes and never re-verifies) instead of "
        "verifying them (the kernel recomputes a merged frame's checksum, so a corrupt "
        "packet would then be hidden, not dropped)",
    )


@dataclass(frozen=True)
class Variant(ABC):
    """What a forwarder module declares as ``VARIANT``: the one description of a variant.

    The harness's registry (:mod:`tunbench.variants`) finds every module of this package
    that declares one and reads everything it shows from it: the name, the summary, the
    table's Mode/Offload/Channel columns and the options a spec may give.
    """

    name: str
    description: str  # the module docstring: "`name`: one-line summary"
    gso: bool  # IFF_VNET_HDR + offload, ``--gso passthrough|split``
    mode: ClassVar[str]  # the table's Mode column: "sync" or "async"

    @property
    @abstractmethod
    def channel_kind(self) -> str:
        """What sits between reader and writer (the table's Channel column), "-" if none."""

    @abstractmethod
    def build_parser(self) -> ArgumentParser:
        """The variant's whole command line: harness arguments and its own options."""

    @abstractmethod
    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the forwarder until SIGINT/SIGTERM; the exit status."""

    @property
    def module(self) -> str:
        """The module that declares this variant, run as ``python -m <module>``."""
        return "forwarders." + self.name.replace("-", "_")

    @property
    def summary(self) -> str:
        """The description's first line without its "`name`: " prefix."""
        lines = self.description.strip().splitlines()
        return lines[0].removeprefix(f"`{self.name}`: ").removesuffix(".") if lines else ""

    def options(self) -> list[Option]:
        """The options a spec may give this variant, in the order ``--help`` lists them."""
        return self.build_parser().options


# gso_size is a u16: its bit_length() is 0..16
GSO_BUCKETS = 17


def pow2_label(bits: int) -> str:
    """The histogram label of values whose ``bit_length()`` is ``bits``: "0", "1", "2-3", …"""
    if bits <= 1:
        return str(bits)
    low = 1 << (bits - 1)
    return f"{low}-{2 * low - 1}"


Frame = bytes | memoryview  # (Counters has a field named bytes)


@dataclass
class Counters:
    """Per-direction counters, like trio's channel statistics().

    ``packets``/``bytes`` are the frames written. The ``--gso split`` path also counts its
    batches (``batches``, and ``batch_sizes``: how many batches had 1, 2-3, 4-7, ... frames),
    the frames and bytes it read (``frames_read``, ``bytes_read``, added per batch; a relay
    that writes what it reads leaves them 0 and :meth:`Forwarder.stats` derives them from
    the writes) and its GRO work (``gro``: packets coalesced, frames out, packets merged into
    an earlier frame, super-frames, bad checksums, checksums verified and checksums trusted
    because the split computed them). On a vnet device ``gso_hist`` counts
    the frames written by the ``bit_length()`` of their gso_size (index 0: no GSO; 11:
    1024-2047): one list increment per write, no dict work on the hot path.
    """

    packets: int = 0
    bytes: int = 0
    drops: int = 0
    read_errors: int = 0
    write_errors: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    segments_in: int = 0
    frames_out: int = 0
    batches: int = 0
    batch_sizes: dict[str, int] = field(default_factory=dict)
    gro: CoalesceStats = field(default_factory=CoalesceStats)
    frames_read: int = 0
    bytes_read: int = 0
    gso_hist: list[int] | None = None  # vnet devices only: GSO_BUCKETS counts

    def batch(self, frames: int) -> None:
        """Count one batch of ``frames`` reads in the power-of-two histogram."""
        self.batches += 1
        label = pow2_label(frames.bit_length())
        self.batch_sizes[label] = self.batch_sizes.get(label, 0) + 1

    def wrote(self, data: Frame) -> None:
        """Count one frame written (and, on a vnet device, its gso_size bucket)."""
        self.packets += 1
        self.bytes += len(data)
        if self.gso_hist is not None:  # virtio_net_hdr.gso_size: bytes 4-5, little-endian
            self.gso_hist[(data[4] | data[5] << 8).bit_length()] += 1

    def write_error(self, err: int) -> None:
        name = errno.errorcode.get(err, str(err))
        self.write_errors[name] = self.write_errors.get(name, 0) + 1
        self.drops += 1

    def merge(self, other: Counters) -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.drops += other.drops
        self.read_errors += other.read_errors
        self.malformed += other.malformed
        self.segments_in += other.segments_in
        self.frames_out += other.frames_out
        self.batches += other.batches
        for k, v in other.write_errors.items():
            self.write_errors[k] = self.write_errors.get(k, 0) + v
        for k, v in other.batch_sizes.items():
            self.batch_sizes[k] = self.batch_sizes.get(k, 0) + v
        self.frames_read += other.frames_read
        self.bytes_read += other.bytes_read
        if other.gso_hist is not None:
            if self.gso_hist is None:
                self.gso_hist = [0] * GSO_BUCKETS
            for i, v in enumerate(other.gso_hist):
                self.gso_hist[i] += v
        self.gro.merge(other.gro)


# Fault injection for the harness's own tests, deliberately not an option (``tunbench
# list`` shows options): with this set to N in its environment, a forwarder's "1to2"
# worker raises once it has forwarded N packets.
FAULT_CRASH_AFTER_ENV = "TUNBENCH_FAULT_CRASH_AFTER"


class InjectedFault(RuntimeError):
    """The fault :data:`FAULT_CRASH_AFTER_ENV` asks for: a bug in a worker, simulated."""


@dataclass
class _FaultyCounters(Counters):
    """Counters that raise :class:`InjectedFault` when ``packets`` reaches ``crash_after``;
    only ever used when the environment asks for the fault, so the hot path is untouched."""

    crash_after: int = 0

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "packets" and 0 < self.crash_after <= value:
            raise InjectedFault(f"injected fault after {value} packets at {time.time():.3f}")


class DeviceGone(Exception):
    """EBADFD/ENODEV/EBADF: the device was unregistered; the worker stops."""


def check_fatal(exc: OSError) -> None:
    if exc.errno in (errno.EBADFD, errno.EBADF, errno.ENODEV, errno.ENXIO):
        raise DeviceGone(str(exc)) from exc


@dataclass
class Forwarder:
    """The shared run loop: devices, per-direction counters, extra stats, worker threads."""

    name: str
    args: argparse.Namespace
    devices: list[TunDevice]
    directions: dict[str, list[Counters]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    exit_reason: str | None = None

    def counters(self, direction: str) -> Counters:
        """A fresh counter object for one worker of ``direction`` (``"1to2"`` / ``"2to1"``)."""
        crash_after = int(os.environ.get(FAULT_CRASH_AFTER_ENV) or 0)
        c = (
            _FaultyCounters(crash_after=crash_after)
            if crash_after and direction == "1to2"
            else Counters()
        )
        if any(d.vnet_hdr for d in self.devices):
            c.gso_hist = [0] * GSO_BUCKETS
        self.directions.setdefault(direction, []).append(c)
        return c

    def stats(self) -> dict[str, Any]:
        per_dir: dict[str, Any] = {}
        for direction, parts in self.directions.items():
            total = Counters()
            for part in parts:
                total.merge(part)
            if not total.batches:  # a relay: every frame read was written or dropped
                total.frames_read = total.packets + total.drops
                total.bytes_read = total.bytes
            hist = total.gso_hist
            total.gso_hist = None
            per_dir[direction] = asdict(total)
            del per_dir[direction]["gso_hist"]
            if hist is not None:
                # frames written by their gso_size, power-of-two buckets ("0": no GSO)
                per_dir[direction]["gso_sizes"] = {
                    pow2_label(bits): n for bits, n in enumerate(hist) if n
                }
            if total.gro.frames_out:
                # packets handed to GRO per frame written: 1.0 means nothing was merged
                per_dir[direction]["coalescing_factor"] = (
                    total.gro.packets_in / total.gro.frames_out
                )
        return {
            "variant": self.name,
            "pid": os.getpid(),
            "offload": {d.name: offload_names(d.offload) for d in self.devices},
            "queues": {d.name: len(d.fds) for d in self.devices},
            "directions": per_dir,
            "extra": self.extra,
            "exit_reason": self.exit_reason,
        }

    def write_stats(self) -> None:
        path: Path | None = self.args.stats
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.stats(), indent=1))
        tmp.replace(path)


def configure_devices(args: argparse.Namespace) -> None:
    """Standalone use only: MTU, address and up, through pyroute2."""
    from pyroute2 import IPRoute

    for ifname, ip in ((args.iface1, args.ip1), (args.iface2, args.ip2)):
        set_mtu(ifname, args.mtu)
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=idx, address=ip, prefixlen=24)
            ipr.link("set", index=idx, state="up")


EXIT_WORKER_CRASHED = 70  # EX_SOFTWARE: a worker raised; its traceback is on stderr


def report_crash(fwd: Forwarder, exc: BaseException) -> None:
    """Record a worker's crash as the exit reason and print its traceback to stderr.

    A group of one (what a trio nursery raises) is unwrapped, so the traceback ends with
    the exception itself, which is the line the harness quotes.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    fwd.exit_reason = f"worker crashed: {exc!r}"
    print(f"{fwd.name}: a worker crashed; stopping the forwarder", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()


PR_SET_NAME = 15  # prctl: the calling thread's name (/proc/<pid>/task/<tid>/comm)
Worker = tuple[str, Callable[[], None]]  # a thread's name (at most 15 bytes) and its loop


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel too, so per-thread CPU (the harness's
    sampler, top -H, py-spy) says which worker it is, not a bare thread id."""
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def run_threads(fwd: Forwarder, workers: Sequence[Worker]) -> int:
    """Run ``workers`` as named daemon threads until a signal (exit 0), a worker crashes
    (exit :data:`EXIT_WORKER_CRASHED` at once) or all of them end (exit 1)."""
    if fwd.args.configure:
        configure_devices(fwd.args)
    done = threading.Event()
    stop_signal: list[int] = []
    crashed: list[BaseException] = []
    alive = [len(workers)]
    lock = threading.Lock()

    def wrap(name: str, fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                name_os_thread(name)
                fn()
            except DeviceGone as exc:
                fwd.exit_reason = f"device gone: {exc}"
            except BaseException as exc:  # a bug: end the whole forwarder, loudly
                with lock:
                    first = not crashed
                    crashed.append(exc)
                if first:
                    report_crash(fwd, exc)
                done.set()
            finally:
                with lock:
                    alive[0] -= 1
                    if alive[0] == 0:
                        done.set()

        return body

    def on_signal(signum: int, _frame: object) -> None:
        stop_signal.append(signum)
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for name, fn in workers:
        threading.Thread(target=wrap(name, fn), name=name, daemon=True).start()
    while not done.wait(0.5):
        pass
    fwd.write_stats()
    sys.stdout.flush()
    sys.stderr.flush()
    # Daemon threads may sit in a blocking read(); leave without joining them.
    if crashed:
        os._exit(EXIT_WORKER_CRASHED)
    os._exit(0 if stop_signal else 1)


def write_frame(dst: int, data: bytes | memoryview, c: Counters) -> bool:
    """Write one frame; a failed write is a counted drop (EIO while down, EINVAL if
    malformed), never a crash. Device-gone errors raise DeviceGone."""
    try:
        os.write(dst, data)
    except OSError as exc:
        check_fatal(exc)
        c.write_error(exc.errno or 0)
        return False
    c.wrote(data)
    return True


def read_frame(src: int, size: int, c: Counters) -> bytes | None:
    """Read one frame; None after a counted, non-fatal read error."""
    try:
        return os.read(src, size)
    except OSError as exc:
        check_fatal(exc)
        c.read_errors += 1
        return None


def read_ready(src: int, limit: int, c: Counters) -> list[bytes]:
    """Frames already waiting on an O_NONBLOCK ``src``: read until EAGAIN or ``limit``."""
    frames: list[bytes] = []
    while len(frames) < limit:
        try:
            frames.append(os.read(src, MAX_FRAME))
        except BlockingIOError:
            break
        except OSError as exc:
            check_fatal(exc)
            c.read_errors += 1
            break
    return frames


def write_wait(dst: int, data: bytes, c: Counters, writable: select.poll) -> None:
    """:func:`write_frame` for an O_NONBLOCK ``dst``: EAGAIN waits on ``writable`` (a poll
    object with ``dst`` registered for POLLOUT) and retries instead of dropping."""
    while True:
        try:
            os.write(dst, data)
        except BlockingIOError:
            writable.poll()
            continue
        except OSError as exc:
            check_fatal(exc)
            c.write_error(exc.errno or 0)
            return
        c.wrote(data)
        return


def pump_blocking(src: int, dst: int, c: Counters, size: int) -> None:
    """Blocking relay of whole frames (with their vnet header if the fds carry one)."""
    while True:
        data = read_frame(src, size, c)
        if data is not None:
            write_frame(dst, data, c)
