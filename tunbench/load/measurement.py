"""What one measurement of a cell produces: the contract between the load generators
(:mod:`tunbench.load.workloads`, the cell's own iperf3 stream run) and the result
document (:func:`tunbench.cell.record.fill`)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from tunbench.load.iperf3 import Iperf3Result
from tunbench.load.ping import PingResult
from tunbench.system.sampler import Background, Sample, Summary


class Measurement(TypedDict):
    """What one measurement of a cell hands to :func:`tunbench.cell.record.fill`."""

    iperf: Iperf3Result | None  # None: a workload without iperf3 (rr, crr)
    samples: list[Sample]
    window: dict[str, Any]  # "start", "end": time.monotonic() seconds; "anchor"
    summary: Summary
    sampler_error: str | None
    sampler_cpu_pct: float | None  # the sampler thread's own CPU, % of one core
    background: Background | None  # the check before traffic (None: not made)
    interval_bps: list[float]  # receiver side, per measured iperf3 interval
    ping: NotRequired[PingResult]  # only with the latency probe, inside the window
    load_samples: NotRequired[dict[str, list[Sample]]]  # iperf3 client and server processes
    workload: NotRequired[dict[str, Any]]  # rr/crr/zero-loss figures, copied into results
    workload_detail: NotRequired[dict[str, Any]]  # what they rest on (tool output, steps)
    tun_packets: NotRequired[dict[str, dict[str, int]] | None]  # the TUN devices' counters
