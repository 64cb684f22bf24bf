"""What a cell is asked to do, apart from which forwarder it runs: workload, devices,
pinning, background check, the offered load. Filled by the CLI (and, for ``--offered
auto``, by the matrix once it knows the rate), read by the cell and its result document."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from tunbench.analysis.cost import Offered
from tunbench.cell.placement import Placement
from tunbench.load import iperf3 as iperf
from tunbench.load.workloads import WorkloadOptions


@dataclass(frozen=True)
class CellOptions:
    """Everything about a cell except which forwarder it runs."""

    results_dir: Path = Path("results")
    iperf: iperf.ClientOptions = field(default_factory=iperf.ClientOptions)
    workload: WorkloadOptions = field(default_factory=WorkloadOptions)  # rr, crr, zero-loss
    mtu: int = 1500
    iface1: str = "tun11"
    ip1: str = "10.0.1.1"
    iface2: str = "tun22"
    ip2: str = "10.0.2.1"
    ready_timeout: float = 10.0
    grace: float = 20.0  # seconds past duration+omit before iperf3 counts as hung
    latency: bool = False  # ping through the forwarder while iperf3 runs
    steer_receive: bool = False  # RPS of the TUN devices' receive work to the load CPUs
    fwd_cpus: tuple[int, ...] = ()
    load_cpus: tuple[int, ...] = ()  # iperf3 and ping, and the harness itself
    background_limit: float = 15.0  # % of one core busy before traffic that makes a run noisy
    background_wait: float = 3.0  # seconds to wait for a quieter machine before running anyway
    background_seconds: float = 1.0  # how long one background check measures
    placement: Placement = field(default_factory=Placement)  # recorded; pins via the cpus
    offered: Offered | None = None  # a paced stream: its rate and how it was chosen
    rev: str | None = None  # --rev: the forwarder's revision (None: found out per cell)
    testbed: str | None = None  # --testbed: where it ran (None: the host's name)


def placed(opts: CellOptions, where: Placement) -> CellOptions:
    """``opts`` pinned as ``where`` says."""
    return replace(opts, placement=where, fwd_cpus=where.fwd_cpus, load_cpus=where.load_cpus)


def with_offered(opts: CellOptions, offered: Offered | None) -> CellOptions:
    """``opts`` paced at ``offered`` (None: unpaced, a capacity run): iperf3's ``-b`` is per
    stream, so each of ``--parallel`` streams gets its share."""
    if offered is None and opts.offered is None:
        return opts  # already unpaced (and a UDP --bandwidth stays)
    bps = offered.bps if offered else None
    bandwidth = max(1, int(bps / opts.iperf.parallel)) if bps else 0
    return replace(
        opts,
        offered=offered,
        workload=replace(opts.workload, offered_bps=bps),
        iperf=replace(opts.iperf, bandwidth=bandwidth),
    )
