"""What a forwarder counts, and the stats file it writes on exit.

Per-direction :class:`Counters` (frames, bytes, drops, errors, batches, GRO work, gso_size
histogram), merged per direction by :class:`Forwarder`, which writes them as JSON to
``--stats``. Also the harness's fault injection (:data:`FAULT_CRASH_AFTER_ENV`) and the
positive control's busy-wait per frame (:data:`SPIN_NS_ENV`, ``--spin-ns``), which only
swap the counter class, so the hot path is untouched when they are off.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forwarders import quota
from tunio.grocoalesce import CoalesceStats
from tunio.tun import TunDevice, offload_names

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


# The positive control of ``compare``'s verdicts: with this set to N (or the spec option
# ``--spin-ns N``, which wins), every frame written busy-waits N ns more, a known extra
# cost per packet (per frame: a GSO super-frame spins once) that a verdict must see.
SPIN_NS_ENV = "TUNBENCH_SPIN_NS"
# The forwarder writes its counters so far to --stats on this signal and goes on
# (``run --verify`` takes the measured run's counters so, before the checks' traffic).
SNAPSHOT_SIGNAL = signal.SIGUSR1


def spin_ns(args: argparse.Namespace) -> int:
    """The busy-wait per frame written: ``--spin-ns`` where given, else :data:`SPIN_NS_ENV`
    (read here, once per counter object, never per packet), else 0."""
    given = getattr(args, "spin_ns", None)
    if given is not None:
        return int(given)
    text = os.environ.get(SPIN_NS_ENV, "").strip()
    try:
        value = int(text or 0)
    except ValueError:
        raise ValueError(f"{SPIN_NS_ENV} must be a whole number of ns, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{SPIN_NS_ENV} must not be negative, got {value}")
    return value


def busy_wait(ns: int, clock: Callable[[], int] = time.perf_counter_ns) -> int:
    """Spin on ``clock`` until ``ns`` ns have passed; the ns that really passed."""
    start = clock()
    now = start
    while now - start < ns:
        now = clock()
    return now - start


def _spinner() -> tuple[Callable[[int], int], str]:
    """The busy-wait the knob uses and its name: the native engine's ``spin`` (C, exact to
    a clock read) where it is built, else :func:`busy_wait` (its Python loop adds its own
    interpreter time, so the extra cost is larger than the ns asked for)."""
    try:
        from tunio import _native
    except ImportError:
        return busy_wait, "python"
    return _native.spin, "native"


SPIN, SPIN_ENGINE = _spinner()


@dataclass
class _SpinningCounters(Counters):
    """Counters whose every counted write first spins ``spin`` ns; only ever used with a
    spin set, so that with none the hot path is the plain :meth:`Counters.wrote`."""

    spin: int = 0
    spun_ns: int = 0  # what the spins really took

    def wrote(self, data: Frame) -> None:
        self.spun_ns += SPIN(self.spin)
        Counters.wrote(self, data)  # not super(): a lookup less per frame


def knob_overhead_ns(calls: int = 2000, tries: int = 5) -> float:
    """What the knob costs per frame beyond the ns it spins: a spinning counter's
    ``wrote`` with a 1 ns spin, less what that spin passed, against a plain counter's, per
    call, the fastest of ``tries`` (measured once at the forwarder's start, ~10 ms). The
    true extra cost per frame is then ``spun_ns_per_frame`` + this."""
    frame = bytes(1500)

    def per_call(c: Counters) -> float:
        best = float("inf")
        for _ in range(tries):
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                c.wrote(frame)
            best = min(best, (time.perf_counter_ns() - t0) / calls)
        return best

    knob = _SpinningCounters(spin=1)
    spinning = per_call(knob) - knob.spun_ns / (calls * tries)
    return max(0.0, spinning - per_call(Counters()))


@dataclass
class Forwarder:
    """The shared run loop: devices, per-direction counters, extra stats, worker threads."""

    name: str
    args: argparse.Namespace
    devices: list[TunDevice]
    directions: dict[str, list[Counters]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    exit_reason: str | None = None
    # called before the stats file is written: a worker whose counters live elsewhere
    # (the uring rings) brings them up to date
    before_stats: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        percent = getattr(self.args, "cpu_quota", None)
        if percent is not None:  # before any worker thread starts: they inherit it
            try:
                self.extra["cpu_quota"] = quota.join(percent)
            except quota.QuotaError as exc:
                raise SystemExit(f"{self.name}: {exc}") from None

    def counters(self, direction: str) -> Counters:
        """A fresh counter object for one worker of ``direction`` (``"1to2"`` / ``"2to1"``)."""
        crash_after = int(os.environ.get(FAULT_CRASH_AFTER_ENV) or 0)
        spin = spin_ns(self.args)
        c: Counters
        if crash_after and direction == "1to2":
            c = _FaultyCounters(crash_after=crash_after)
        elif spin:
            c = _SpinningCounters(spin=spin)
            if "spin_ns" not in self.extra:
                self.extra.update(
                    spin_ns=spin, spin_engine=SPIN_ENGINE, spin_overhead_ns=knob_overhead_ns()
                )
        else:
            c = Counters()
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
        spinning = [
            p
            for parts in self.directions.values()
            for p in parts
            if isinstance(p, _SpinningCounters)
        ]
        frames = sum(p.packets for p in spinning)
        if spinning and frames:  # the positive control's real extra time per frame
            self.extra["spun_ns_per_frame"] = sum(p.spun_ns for p in spinning) / frames
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
        for hook in self.before_stats:
            hook()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.stats(), indent=1))
        tmp.replace(path)
