"""What moving the traffic cost the forwarder (netperf's "service demand"), and what limited
a capacity run.

A stream run at a fixed offered load (``--offered``: iperf3 paced with ``-b``) moves the
same bytes whatever the forwarder, so what differs between forwarders is the CPU they
needed for it. That CPU is the scheduler's own account of the forwarder's threads
(schedstat, nanoseconds on a CPU over the measured window: ``results.cpu_sched_avg``);
psutil's tick-based figure (``cpu_avg``) is the cross-check, and a disagreement of more
than :data:`DISAGREE_PCT` is recorded (``cpu_disagree``). From it, per run:

- ``gbps_per_core``: Gbit/s received per core of forwarder CPU (the primary figure of an
  offered-load row: :data:`tunbench.analysis.primary.COST`; higher is better);
- ``us_per_mb``: CPU microseconds per 10^6 bytes received;
- ``us_per_packet``: CPU microseconds per frame the forwarder wrote, both directions (a
  packet, or with offload a GSO super-packet): from its own counters, or where it has
  none (peers, external forwarders) from the TUN devices' receive counters, which count
  the same writes (``packets_source``);
- ``runq_wait_share``: of the time the forwarder's threads were runnable, the share they
  waited on a run queue instead of running.

A paced run that carried less than ``100 - SHORT_PCT`` % of the offered rate lost
traffic or fell behind: it is marked ``offered_short`` and its cost figures are None (a
forwarder that drops what it cannot carry would otherwise look cheap). Capacity runs
(unpaced) get the same figures, at whatever rate they reached.

:func:`capacity` turns Bound by's verdict into ``capacity_limited`` / ``capacity_bound``:
a capacity that the load generator or the machine ran out of first says nothing about
the forwarder's speed. :func:`choose_rate` is ``--offered auto``'s rule.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunbench.analysis.fwdmetrics import traffic_seconds

SHORT_PCT = 3.0  # carried below 97 % of the offered rate: short, not used for cost
DISAGREE_PCT = 5.0  # schedstat and psutil CPU further apart than this: said so
# --offered auto: this share of the slowest compared row's capacity. Not more: the cost of
# a forwarder near its limit is not linear in the load (measured: sync-normal at 70 % of
# its capacity used 78-97 % of its core, and 1 run of 4 fell short of the rate)
AUTO_FRACTION = 0.5
# --offered auto groups rows by capacity: a group is its slowest row and every row up to
# this many times as fast, and shares that row's rate. One rate for all let the slowest
# row (0.3 Gbit/s) set 0.1 Gbit/s for rows that carry 20: 1 % of their capacity, where
# their CPU per byte is wake-ups (sync-gso: 7.05 Gbit/s per core there, 22.8 at 5 Gbit/s,
# which matches its ~22 Gbit/s on one saturated core)
GROUP_SPAN = 3.0
# results keys this module fills (None where a run has no such figure)
KEYS = (
    "offered_bps",
    "carried_pct",
    "offered_short",
    "cost_cpu_source",
    "cost_cpu_pct",
    "gbps_per_core",
    "us_per_mb",
    "us_per_packet",
    "packets_per_s",
    "packets_source",
    "runq_wait_share",
    "cpu_check_pct",
    "cpu_disagree",
    "capacity_limited",
    "capacity_bound",
)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        return None
    return float(v)


def offered_of(doc: Mapping[str, Any]) -> float | None:
    """The offered rate a run was paced at (bits/s), None for an unpaced run."""
    wl = (doc.get("metadata") or {}).get("workload") or {}
    return _num(wl.get("offered_bps")) if isinstance(wl, Mapping) else None


def frames_written(fwd: Any) -> float | None:
    """Frames the forwarder wrote in both directions (its counters), None without them."""
    dirs = fwd.get("directions") if isinstance(fwd, Mapping) else None
    if not isinstance(dirs, Mapping) or not dirs:
        return None
    total = sum(_num(d.get("packets")) or 0.0 for d in dirs.values() if isinstance(d, Mapping))
    return total or None


def tun_frames(tun: Any) -> float | None:
    """Frames written into the TUN devices (their ``rx`` counters, summed), None without."""
    if not isinstance(tun, Mapping):
        return None
    total = sum(_num(c.get("rx")) or 0.0 for c in tun.values() if isinstance(c, Mapping))
    return total or None


def figures(
    bps: float | None,
    cpu_pct: float | None,
    pps: float | None = None,
    offered_bps: float | None = None,
) -> dict[str, Any]:
    """The cost arithmetic of one run: receiver bits/s, forwarder CPU (% of one core),
    frames per second, the offered rate (None: unpaced)."""
    out: dict[str, Any] = {
        "offered_bps": offered_bps,
        "carried_pct": None,
        "offered_short": None,
        "gbps_per_core": None,
        "us_per_mb": None,
        "us_per_packet": None,
    }
    if offered_bps and bps is not None:
        out["carried_pct"] = 100.0 * bps / offered_bps
        out["offered_short"] = out["carried_pct"] < 100.0 - SHORT_PCT
    if out["offered_short"] or not bps or not cpu_pct or cpu_pct <= 0:
        return out
    cores = cpu_pct / 100.0
    out["gbps_per_core"] = bps / 1e9 / cores
    out["us_per_mb"] = cores * 1e6 / (bps / 8 / 1e6)  # CPU-µs per second / MB per second
    if pps:
        out["us_per_packet"] = cores * 1e6 / pps
    return out


def compute(doc: Mapping[str, Any]) -> dict[str, Any]:
    """:data:`KEYS` for one result document (stream runs with a forwarder process; every
    figure None otherwise, but for the capacity flags of a kernel row)."""
    out: dict[str, Any] = dict.fromkeys(KEYS)
    res = doc.get("results") or {}
    wl = (doc.get("metadata") or {}).get("workload") or {}
    kind = (wl.get("kind") if isinstance(wl, Mapping) else None) or "stream"
    offered = offered_of(doc)
    out["offered_bps"] = offered
    if doc.get("status") != "ok" or kind != "stream":
        return out
    limited, bound = capacity(res.get("bound_by"), offered is not None)
    out["capacity_limited"], out["capacity_bound"] = limited, bound
    if (doc.get("cell") or {}).get("kind") == "baseline":
        return out
    sched, ticks = _num(res.get("cpu_sched_avg")), _num(res.get("cpu_avg"))
    cpu = sched if sched is not None else ticks
    out["cost_cpu_source"] = "schedstat" if sched is not None else ("psutil" if ticks else None)
    out["cost_cpu_pct"] = cpu
    frames = frames_written(doc.get("forwarder"))
    out["packets_source"] = "forwarder" if frames else None
    if frames is None and (frames := tun_frames(doc.get("tun_packets"))):
        out["packets_source"] = "tun"
    secs = traffic_seconds(doc)
    pps = frames / secs if frames and secs else None
    out["packets_per_s"] = pps
    out.update(figures(_num(res.get("bps")), cpu, pps, offered))
    wait = _num(res.get("cpu_wait_avg"))
    if sched is not None and wait is not None and sched + wait > 0:
        out["runq_wait_share"] = wait / (sched + wait)
    if sched and ticks is not None:
        out["cpu_check_pct"] = 100.0 * (ticks / sched - 1.0)
        out["cpu_disagree"] = abs(out["cpu_check_pct"]) > DISAGREE_PCT
    return out


def capacity(verdict: Any, paced: bool) -> tuple[bool | None, str | None]:
    """``(capacity_limited, capacity_bound)`` of a run from its Bound by verdict: ``load``
    (an iperf3 process or the load CPUs ran out), ``machine`` (every core busy) or
    ``forwarder`` (anything else: the forwarder, or the path through it, set the rate).
    None for a paced run (not a capacity) and without a verdict."""
    if paced or not isinstance(verdict, str) or not verdict:
        return None, None
    if verdict.startswith("load generator"):
        return True, "load"
    if verdict.startswith("machine"):
        return True, "machine"
    return False, "forwarder"


@dataclass(frozen=True)
class Offered:
    """The offered rate of a paced run, and how it was chosen: ``given`` (``--offered
    RATE``) or ``auto`` (from the capacity of the slowest compared row)."""

    bps: float
    mode: str = "given"
    spec: str | None = None  # auto: the slowest compared row
    capacity_bps: float | None = None  # auto: its median capacity
    runs: int = 0  # auto: how many capacity runs that median is of
    fraction: float | None = None  # auto: the share of it taken
    group: tuple[str, ...] = ()  # auto by groups: the rows that share this rate

    @property
    def how(self) -> str:
        if self.mode != "auto" or self.capacity_bps is None or self.fraction is None:
            return f"given: --offered {self.bps / 1e9:.4g}G"
        whose = "the slowest compared row's" if not self.group else "its group's slowest row's"
        return (
            f"auto: {100 * self.fraction:.0f}% of {whose} capacity "
            f"({self.spec}: median {self.capacity_bps / 1e9:.3g} Gbit/s of {self.runs} "
            f"run{'s' * (self.runs != 1)}), down to a 1-2-3-5 step"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "bps": self.bps,
            "how": self.how,
            "mode": self.mode,
            "from_spec": self.spec,
            "from_capacity_bps": self.capacity_bps,
            "from_runs": self.runs or None,
            "fraction": self.fraction,
            "group": list(self.group) or None,
        }


LADDER = (1.0, 2.0, 3.0, 5.0)  # the rates auto chooses from, x 10^k bits/s


def ladder_rate(bps: float) -> float:
    """The highest rate of :data:`LADDER` x 10^k at or below ``bps`` (0.62e9 -> 0.5e9).

    Coarse on purpose: a row's key holds its rate, so two matrices of the same code must
    choose the same one to be compared, though their capacity runs differ by 10 % and
    more; they do unless the slowest capacity lies near a step."""
    if bps <= 0:
        return 0.0
    decade = 10.0 ** math.floor(math.log10(bps) + 1e-12)
    step = max((m for m in LADDER if m * decade <= bps * (1 + 1e-9)), default=LADDER[0])
    return float(round(step * decade))


def choose_rate(
    capacities: Mapping[str, Sequence[float]], fraction: float = AUTO_FRACTION
) -> Offered | None:
    """``--offered auto``: ``fraction`` of the slowest row's median capacity (bits/s per
    run, rows by spec; rows without a successful run are left out), rounded down to the
    rate ladder (:func:`ladder_rate`); None when no row has a capacity."""
    measured = {spec: list(v) for spec, v in capacities.items() if v}
    if not measured:
        return None
    medians = {spec: statistics.median(v) for spec, v in measured.items()}
    spec = min(medians, key=lambda s: medians[s])
    rate = ladder_rate(fraction * medians[spec])
    return Offered(rate, "auto", spec, medians[spec], len(measured[spec]), fraction)


def choose_rates(
    capacities: Mapping[str, Sequence[float]],
    fraction: float = AUTO_FRACTION,
    span: float = GROUP_SPAN,
) -> dict[str, Offered]:
    """``--offered auto`` by groups of rows of similar capacity: rows sorted by median
    capacity; a group is the slowest row not yet in one and every row at most ``span``
    times its capacity; each group's rate is :func:`choose_rate` of its rows. Rows by
    spec, those without a successful run left out (no rate)."""
    medians = {spec: statistics.median(v) for spec, v in capacities.items() if v}
    order = sorted(medians, key=lambda s: medians[s])
    out: dict[str, Offered] = {}
    while order:
        top = medians[order[0]] * span
        group = [s for s in order if medians[s] <= top]
        order = order[len(group) :]
        chosen = choose_rate({s: capacities[s] for s in group}, fraction)
        assert chosen is not None  # every row of the group has a capacity
        shared = dataclasses.replace(chosen, group=tuple(group))
        out.update(dict.fromkeys(group, shared))
    return out
