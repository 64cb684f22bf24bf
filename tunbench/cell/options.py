"""What a cell is asked to do, apart from which forwarder it runs: workload, devices,
pinning, background check. Filled by the CLI, read by the cell and its result document."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
    fwd_cpus: tuple[int, ...] = ()
    load_cpus: tuple[int, ...] = ()  # iperf3 and ping, and the harness itself
    background_limit: float = 15.0  # % of one core busy before traffic that makes a run noisy
    background_wait: float = 3.0  # seconds to wait for a quieter machine before running anyway
    background_seconds: float = 1.0  # how long one background check measures
