"""The uring-* variants' loop (tunio/uring/ring.c) against a fake ring: batching, order,
errors, counters. No root, no TUN device: the fake's devices are scripts (backends.c).

The fake completes a write at once (with -EINVAL, -EIO or -EBADFD when the frame starts
with 0xEE, 0xE1 or 0xBD), a read from the frames fed to it, and its time stands still: a
wait with nothing ready times out at once, so every call returns when the script is done.
"""

from __future__ import annotations

import argparse
import errno
from typing import Any

import pytest

from forwarders.counters import Counters, Forwarder, InjectedFault, _FaultyCounters
from forwarders.frameio import DeviceGone
from forwarders.gsopath import SplitRelay
from forwarders.uringbase import RingCounters, pump, pump_split

from engines import in_ci

uring: Any = pytest.importorskip("tunio._uring") if not in_ci() else None
if uring is None:  # under CI=true a missing module fails here, loudly
    from tunio import _uring as uring

EINVAL_FRAME, EIO_FRAME, GONE_FRAME = b"\xee" * 40, b"\xe1" * 40, b"\xbd" * 40
READS = [pytest.param(False, id="single"), pytest.param(True, id="multishot")]


def frames(n: int, size: int = 100) -> list[bytes]:
    return [bytes([1 + i % 150]) * size + i.to_bytes(4, "big") for i in range(n)]


def test_single_reads_batch_completions_into_submits() -> None:
    """depth 8, batch 4, 10 frames waiting: the first submit carries the 8 reads, every one
    after carries the operations of at most 4 completions; one system call each."""
    ring = uring.fake_ring(8, 4)
    sent = frames(10)
    ring.feed(sent)
    assert ring.pump(100, 10) == 0
    assert ring.written() == sent  # every frame, in order
    assert ring.submit_sizes() == [8, 4, 4, 4, 4, 2, 2]
    assert ring.max_inflight() <= 8  # never more operations than buffers
    st = ring.stats()
    assert st["packets"] == 10 and st["bytes"] == sum(map(len, sent))
    assert st["frames_read"] == 10 and st["drops"] == 0
    assert st["submits"] == 7 and st["sqes"] == sum(ring.submit_sizes())
    assert st["enters"] == 7  # each submit was one io_uring_enter, waits included
    assert st["cqes"] == 20  # a read and a write per frame


@pytest.mark.parametrize("multishot", READS)
@pytest.mark.parametrize(("depth", "batch"), [(1, 1), (4, 1), (8, 4), (64, 32), (16, 16)])
def test_every_frame_is_written_once_in_order(multishot: bool, depth: int, batch: int) -> None:
    ring = uring.fake_ring(depth, batch, multishot=multishot)
    sent = frames(300)
    for i in range(0, 300, 37):  # arriving in bursts between calls
        ring.feed(sent[i : i + 37])
        assert ring.pump(1 << 20, 10) == 0
    assert ring.written() == sent
    st = ring.stats()
    assert st["packets"] == 300 and st["read_errors"] == 0
    sizes = ring.submit_sizes()
    # after arming, a submit carries what at most `batch` completions queued
    assert max(sizes[1:]) <= batch + 1  # (+1: a multishot read re-armed with them)
    assert ring.max_inflight() <= depth
    # one system call per submit at most, and fewer than one per frame once batching
    assert st["enters"] <= st["submits"] + st["waits"]
    if batch > 1:
        assert st["enters"] < 300


def test_batch_bounds_completions_per_submit() -> None:
    small, big = uring.fake_ring(32, 1), uring.fake_ring(32, 32)
    for ring in (small, big):
        ring.feed(frames(256))
        ring.pump(1 << 20, 10)
    assert small.stats()["submits"] > 4 * big.stats()["submits"]
    assert set(small.submit_sizes()[1:]) == {1}
    per_submit = big.stats()["cqes"] / big.stats()["submits"]
    assert per_submit > 10


def test_budget_returns_early_and_the_next_call_goes_on() -> None:
    ring = uring.fake_ring(8, 2)
    sent = frames(40)
    ring.feed(sent)
    ring.pump(5, 10)
    first = len(ring.written())
    assert 5 <= first < 40
    ring.pump(1000, 10)
    assert ring.written() == sent


@pytest.mark.parametrize("multishot", READS)
def test_malformed_writes_and_read_errors_are_counted_not_fatal(multishot: bool) -> None:
    ring = uring.fake_ring(4, 2, multishot=multishot)
    good = frames(6)
    ring.feed([good[0], EINVAL_FRAME, good[1], errno.EIO, good[2], EIO_FRAME, *good[3:]])
    assert ring.pump(100, 10) == 0
    assert ring.gone == 0
    assert ring.written() == good  # the bad ones dropped, the rest in order
    st = ring.stats()
    assert st["write_errors"] == {errno.EINVAL: 1, errno.EIO: 1}
    assert st["drops"] == 2 and st["read_errors"] == 1 and st["packets"] == 6


@pytest.mark.parametrize("multishot", READS)
def test_device_gone_ends_the_loop(multishot: bool) -> None:
    ring = uring.fake_ring(4, 2, multishot=multishot)
    ring.feed([*frames(3), GONE_FRAME, *frames(3)])
    assert ring.pump(100, 10) == errno.EBADFD
    assert ring.gone == errno.EBADFD
    assert 3 <= len(ring.written()) < 6
    read_gone = uring.fake_ring(4, 2, multishot=multishot)
    read_gone.feed([*frames(2), errno.EBADFD])
    assert read_gone.pump(100, 10) == errno.EBADFD


def test_multishot_survives_running_out_of_buffers() -> None:
    """More frames waiting than buffers: the multishot read ends with ENOBUFS and is armed
    again when written buffers come back, without losing or reordering a frame."""
    ring = uring.fake_ring(2, 1, multishot=True)
    sent = frames(50)
    ring.feed(sent)
    ring.pump(1000, 10)
    assert ring.written() == sent
    assert ring.stats()["read_errors"] == 0  # ENOBUFS is not an error


@pytest.mark.parametrize("multishot", READS)
def test_split_path_hands_out_batches_and_writes_them(multishot: bool) -> None:
    ring = uring.fake_ring(8, 4, split=True, multishot=multishot)
    sent = frames(10)
    ring.feed(sent)
    got: list[bytes] = []
    while len(got) < 10:
        batch = ring.read_frames(4, 0)
        assert 0 < len(batch) <= 4
        got += batch
        ring.write_frames(batch)
    assert got == sent and ring.written() == sent
    assert ring.read_frames(4, 0) == []  # nothing left: the timeout, at once
    st = ring.stats()
    assert st["packets"] == 10 and st["frames_read"] == 10


def test_split_writes_go_out_batch_per_submit() -> None:
    ring = uring.fake_ring(4, 4, split=True)
    ring.write_frames(frames(10))
    assert ring.submit_sizes() == [4, 4, 2]
    ring.write_frames([EINVAL_FRAME, *frames(2)])
    assert ring.stats()["write_errors"] == {errno.EINVAL: 1}


def test_ring_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="depth"):
        uring.fake_ring(0, 1)
    with pytest.raises(ValueError, match="split=True"):
        uring.fake_ring(4, 2).read_frames(1, 0)
    with pytest.raises(ValueError, match="read_frames"):
        uring.fake_ring(4, 2, split=True).pump(1, 0)


# ------------------------------------------------------------------ the Python worker


def forwarder(vnet: bool = False) -> tuple[Forwarder, Counters]:
    fwd = Forwarder("uring-test", argparse.Namespace(stats=None, configure=False), [])
    c = fwd.counters("1to2")
    if vnet:
        c.gso_hist = [0] * 17
    return fwd, c


def test_worker_counts_what_the_ring_did_and_stops_when_the_device_is_gone() -> None:
    ring = uring.fake_ring(8, 4)
    _, c = forwarder()
    info: dict[str, Any] = {}
    ring.feed([*frames(20), EINVAL_FRAME, *frames(5), GONE_FRAME])
    with pytest.raises(DeviceGone, match="File descriptor in bad state"):
        pump(ring, RingCounters(ring, c, info))
    assert c.packets == 25 and c.drops == 1 and c.write_errors == {"EINVAL": 1}
    assert c.bytes == sum(map(len, frames(20))) + sum(map(len, frames(5)))
    st = ring.stats()
    assert info["syscalls"] == st["enters"] and info["submissions"] == st["submits"]
    assert info["syscalls_per_packet"] == pytest.approx(st["enters"] / 25)
    assert info["completions_per_submission"] == pytest.approx(st["cqes"] / st["submits"])


def test_counters_follow_the_ring_across_calls_without_counting_twice() -> None:
    ring = uring.fake_ring(4, 2, vnet=True)
    _, c = forwarder(vnet=True)
    sync = RingCounters(ring, c, {})
    hdr = bytes([1, 1, 0, 0]) + (1448).to_bytes(2, "little") + bytes(4)  # gso_size 1448
    for _ in range(3):
        ring.feed([hdr + b"x" * 100, bytes(10) + b"y" * 50])
        ring.pump(100, 10)
        sync.update()
        sync.update()  # a second update with nothing new changes nothing
    assert c.packets == 6 and c.gso_hist is not None
    assert c.gso_hist[0] == 3 and c.gso_hist[(1448).bit_length()] == 3


def test_the_fault_hook_fires_through_the_ring_counters() -> None:
    ring = uring.fake_ring(4, 2)
    c = _FaultyCounters(crash_after=3)
    ring.feed(frames(10))
    with pytest.raises(InjectedFault):
        pump(ring, RingCounters(ring, c, {}))


def test_split_worker_splits_coalesces_and_writes_through_the_ring() -> None:
    """Plain (GSO_NONE) vnet frames through the split path's worker: written as frames of
    their own, counted as batches, and the loop ends when the device is gone."""
    from tunio.vnethdr import VirtioNetHdr

    from packets import make_pkt

    ring = uring.fake_ring(8, 4, vnet=True, split=True)
    _, c = forwarder(vnet=True)
    # UDP of six flows (one packet each: nothing to merge), full checksums
    pkts = [make_pkt(b"%d" % i * 30, tcp=False, sport=40000 + i) for i in range(6)]
    ring.feed([VirtioNetHdr().pack() + p for p in pkts])
    bad = VirtioNetHdr(flags=1, csum_start=100, csum_offset=6).pack() + pkts[0]
    ring.feed([bad])  # its checksum field lies outside the packet: a counted drop
    ring.feed([errno.EBADFD])
    relay = SplitRelay(1500, "python", True, 4)
    with pytest.raises(DeviceGone):
        pump_split(ring, relay, c, RingCounters(ring, c, {}))
    written = ring.written()
    assert b"".join(w[10:] for w in written) == b"".join(pkts)
    assert c.frames_read == 7 and c.malformed == 1 and c.batches >= 2
    assert c.packets == len(written)
