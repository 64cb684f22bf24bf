"""``--window auto``: the TCP window that keeps a stream from overflowing the TUN queue.

A TUN device queues at most txqueuelen packets (500 by default) for the forwarder to
read; when the forwarder falls behind, the kernel drops (tx_dropped) and TCP recovers
(KERNEL-NOTES 2.6). For a forwarder that moves MTU-sized packets, 500 slots hold only
~750 KB, less than TCP's autotuned window, so every unpaced run is a loss-recovery race:
measured here, ``uring-normal`` ran either 2.6-2.8 or 3.7-3.8 Gbit/s from one run to the
next (its retransmits 1,300-3,200 or 300-780), whichever regime the run's flow fell into.
With the receiver's window capped at a third of the queue, no packet is lost at the TUN
device, the forwarder still finds its queue full, and the same rows repeat to 1-3 %
(2026-12-04: 6 runs each, ``--window 256K``: sync-normal 1.51-1.58, uring-normal
2.45-2.62 Gbit/s, 0 retransmits).

Rows whose TUN queue holds 64 KB super-packets (GSO passthrough or split), kernel rows
with offloads and external forwarders of unknown kind keep the kernel's autotuning: a
cap there would limit their throughput by the window, not by the forwarder (sync-gso
15.5 Gbit/s at 256K against 20 at the default). ``kernel-router --no-offload``, the
reference of the rows without offload, gets their cap, so their ``% of kernel`` compares
the same workload.
"""

from __future__ import annotations

from dataclasses import replace

from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec, describe

TUN_QUEUE = 500  # the kernel's default txqueuelen of a TUN device, packets
SHARE = 3  # the window is this fraction of what the queue holds (Linux's receive
# window can reach ~1.5x the iperf3 -w value: SO_RCVBUF is doubled, then scaled)


def queue_bytes(mtu: int) -> int:
    """What a TUN queue of MTU-sized packets holds."""
    return TUN_QUEUE * mtu


def capped(mtu: int) -> int:
    """The window for a row of MTU-sized packets: a third of its queue, in whole KiB."""
    return queue_bytes(mtu) // SHARE // 1024 * 1024


def moves_mtu_packets(cell: CellSpec) -> bool:
    """Whether the cell's TUN queue holds MTU-sized packets: a forwarder without offload
    (built-in or peer) and its kernel reference row."""
    return describe(cell)["offload"] == "none"


def auto(cell: CellSpec, opts: CellOptions) -> CellOptions:
    """``opts`` with ``--window auto`` applied for ``cell``: capped for a TCP stream of
    MTU-sized packets, unchanged otherwise (UDP, rr, crr, zero-loss, offload rows)."""
    if opts.workload.kind != "stream" or opts.iperf.udp or not moves_mtu_packets(cell):
        return opts
    return replace(opts, iperf=replace(opts.iperf, window=capped(opts.mtu)))
