"""Where a cell's processes run: ``--placement split|shared|none`` (or ``--cpus FWD:LOAD``).

- ``split``: the forwarder on a CPU of its own (the first one tunbench may use, CPU 0
  on most machines), the iperf3 client and server,
  ping, the sampler and the harness on the others. The forwarder's cost is then one
  core's work that nothing else competes for, and the load generators cannot steal its
  CPU in one run and leave it alone in the next (the run-to-run noise of an unpinned
  2-core VM). The default on a machine of 2 or more CPUs, for single-thread forwarders,
  peers, external forwarders and the kernel rows (whose forwarding runs in softirq on the
  sender's CPU, so they get the load CPUs, the same as the rows held against them).
- ``shared``: everything on one CPU (the last one tunbench may use): no cross-CPU wakeups
  at all, every hand-over between iperf3 and the forwarder a context switch on that CPU.
- ``none``: no pinning; the scheduler decides.

A multi-thread row (``--thread N`` > 1) is left unpinned under ``split`` and ``shared``
(one CPU would serialise the threads it is meant to measure) and says so in its label.
``--cpus`` pins exactly as asked and is recorded as placement ``cpus``. Only the CPU
sets become part of a row's key (:func:`tunbench.analysis.results.workload_key`), as
``--cpus`` always was, so ``--placement split`` and ``--cpus 0:1`` on 2 CPUs are the
same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tunbench.cell.variants import CellSpec
from tunbench.errors import UsageError

MODES = ("split", "shared", "none")


def receive_cpus(cell: CellSpec, opts: Any) -> list[int]:
    """Where ``--steer-receive`` steers the receive work of the packets a pinned
    forwarder writes (RPS): the load CPUs, for a forwarder cell pinned apart from its
    load (``opts``: its CellOptions); none otherwise, or without the option.

    A TUN write hands the packet to the stack on the writer's CPU (``netif_rx``): the
    receiving endpoint's IP and TCP work, and the sender's ACK processing and next
    transmissions, then run in softirq inside the forwarder's write and are charged to
    the forwarder. How much of it lands there, and how much in the iperf3 processes'
    own context, changes from run to run: measured 2026-12-04, ``sync-normal`` on its own
    CPU ran 1.36-1.82 Gbit/s at 99 % of that CPU with no retransmit, and one 16 s run
    went from 1.5 to 2.45 Gbit/s the second its two TUN devices' receive work was steered
    to the other CPU. With it steered the forwarder's CPU holds the forwarder's work only.
    Kernel rows have no forwarder process: their forwarding is that receive work.
    """
    fwd, load = opts.fwd_cpus, opts.load_cpus
    if not opts.steer_receive or cell.kind == "baseline" or not fwd or not load:
        return []
    return sorted(set(load) - set(fwd))


@dataclass(frozen=True)
class Placement:
    """A cell's pinning and why: recorded as ``metadata.placement``."""

    mode: str = "none"  # split | shared | none | cpus
    fwd_cpus: tuple[int, ...] = ()
    load_cpus: tuple[int, ...] = ()
    why: str = ""

    @property
    def label(self) -> str:
        """The table's Placement column: ``split 0|1``, ``none (multi-thread)``."""
        fwd = ",".join(map(str, self.fwd_cpus))
        load = ",".join(map(str, self.load_cpus))
        if self.mode == "split":
            return f"split {fwd}|{load}"
        if self.mode == "shared":
            return f"shared {fwd}"
        if self.mode == "cpus":
            return f"cpus {fwd or '-'}:{load or '-'}"
        return "none (multi-thread)" if self.why.startswith("multi-thread") else "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "forwarder": list(self.fwd_cpus),
            "load": list(self.load_cpus),
            "why": self.why,
            "label": self.label,
        }


def threads(cell: CellSpec) -> int:
    """Worker threads per direction a spec asks for (``--thread N``; 1 otherwise)."""
    n = getattr(cell.options, "thread", 1) if cell.options is not None else 1
    return int(n) if isinstance(n, int) else 1


def resolve(
    cell: CellSpec,
    asked: str | None,
    cpus: tuple[tuple[int, ...], tuple[int, ...]] | None,
    allowed: Sequence[int],
) -> Placement:
    """The placement of ``cell``: ``asked`` (None: the default), or ``cpus`` as given
    with ``--cpus``, on the CPUs ``allowed`` (those tunbench may run on, in order);
    UsageError when both are given or a mode needs more CPUs than there are."""
    if cpus is not None:
        if asked is not None:
            raise UsageError("--cpus and --placement both say where to run: give one")
        return Placement("cpus", cpus[0], cpus[1], "--cpus")
    cpu = sorted(allowed)
    ncpu = len(cpu)
    mode = asked or ("split" if ncpu >= 2 else "none")
    why = f"--placement {asked}" if asked else f"default on {ncpu} CPU{'s' * (ncpu != 1)}"
    if mode == "none":
        return Placement("none", (), (), why)
    if threads(cell) > 1:
        return Placement("none", (), (), f"multi-thread row ({threads(cell)} per direction)")
    if mode == "split":
        if ncpu < 2:
            raise UsageError(f"--placement split needs 2 CPUs, this machine has {ncpu}")
        return Placement("split", (cpu[0],), tuple(cpu[1:]), why)
    if mode == "shared":
        return Placement("shared", (cpu[-1],), (cpu[-1],), why)
    raise UsageError(f"--placement {mode}: expected one of {', '.join(MODES)}")
