"""The primary figure of a workload: the one number per run that statistics are made of.

Every workload kind measures one figure that says how well a forwarder did: ``stream``
its receiver-side throughput (``gbps``), ``rr`` transactions per second, ``crr``
connections per second, ``zero-loss`` the highest packet rate without loss; a stream
paced at a fixed offered load (``--offered``) its cost, Gbit/s per core of forwarder CPU
(``gbps_per_core``, :mod:`tunbench.analysis.cost`), since every row there moves the same
bytes. Confidence
intervals, ``% of kernel``, ``matrix --until-ci``, ``compare``'s verdicts, sweeps and the
charts of the report page all take a run's figure from :func:`value`, so a row is judged
on what its workload measured and never on a Gbit/s it does not have.

:class:`Metric` also says how the figure is shown: its display unit (zero-loss in kpps,
the raw numbers stay packets per second) and the CPU cost per unit of it (% of one core
per Gbit/s, per 1000 transactions/s, ...). Nothing here imports the rest of tunbench but
its errors.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunbench.errors import ResultFileError


def missing(v: Any) -> bool:
    """None or NaN (what pandas stores for a missing number, and beside strings)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


@dataclass(frozen=True)
class Metric:
    """What a workload kind's primary figure is and how it is written."""

    kind: str  # the workload kind: stream, rr, crr, zero-loss
    key: str  # its key in ``results`` and in the flat record
    name: str  # in words, for chart titles: "throughput", "transactions"
    unit: str  # unit of the raw numbers (SI, as stored): "Gbit/s", "packets/s"
    label: str  # the unit as tables and axes show it: "Gbps", "TPS", "kpps"
    scale: float  # raw / scale = the number shown (kpps: 1000)
    decimals: int  # decimals of a shown number
    cpu_label: str  # what CPU is divided by: "Gbps" -> the column "CPU/Gbps"
    cpu_key: str  # the same in export names: cpu_per_gbps, cpu_per_ktps
    cpu_scale: float  # raw / cpu_scale = the amount CPU is divided by
    higher_is_better: bool = True
    header: str = ""  # its table column where that is not ``label`` ("0-loss kpps")
    cpu_decimals: int = 1  # decimals of CPU per unit (% of one core)
    cpu_over: str = ""  # the record key CPU is divided by, where it is not the figure's

    def cpu_per_record(self, rec: Mapping[str, Any]) -> float | None:
        """:meth:`cpu_per` of a flat record: its CPU over what this figure divides it by."""
        return self.cpu_per(rec.get("cpu_avg"), rec.get(self.cpu_over or self.key))

    def shown(self, raw: float) -> float:
        """A raw figure in the unit tables and charts use (pps -> kpps)."""
        return raw / self.scale

    def number(self, raw: Any, unit: bool = False, like: Any = None) -> str:
        """A raw figure as text ("15,332", "63.5"; Gbit/s with 3 decimals below 1, as many
        as ``like`` has where given); with ``unit`` its label after it; "-" when missing."""
        if missing(raw):
            return "-"
        v = self.shown(float(raw))
        ref = v if missing(like) else self.shown(float(like))
        digits = self.decimals + (1 if self.kind in ("stream", "cost") and abs(ref) < 1 else 0)
        text = f"{v:,.{digits}f}"
        return f"{text} {self.label}" if unit else text

    def ci(self, mean: Any, low: Any, high: Any, unit: bool = False) -> str:
        """``mean ± half-width`` of a confidence interval, both in the shown unit and with
        the mean's decimals; "-" without an interval."""
        if missing(mean) or missing(low) or missing(high):
            return "-"
        half = self.number((float(high) - float(low)) / 2, like=mean)
        text = f"{self.number(mean)} ± {half}"
        return f"{text} {self.label}" if unit else text

    def cpu_per(self, cpu: Any, raw: Any) -> float | None:
        """Forwarder CPU (% of one core) per unit of the figure (per Gbit/s, per kTPS),
        None when either is missing or the figure is 0."""
        if missing(cpu) or missing(raw) or not raw:
            return None
        return float(cpu) / (float(raw) / self.cpu_scale)

    @property
    def cpu_column(self) -> str:
        """The table column of :meth:`cpu_per`: ``CPU/Gbps``, ``CPU/kTPS``."""
        return f"CPU/{self.cpu_label}"

    @property
    def column(self) -> str:
        """Its column in tables: ``Gbps``, ``TPS``, ``conn/s``, ``0-loss kpps``."""
        return self.header or self.label

    @property
    def axis(self) -> str:
        """An axis title: the shown unit and what it is ("TPS (transactions per second)");
        a stream's is "Gbit/s", as it always was."""
        return self.unit if self == STREAM else f"{self.label} ({self.name})"

    @property
    def title(self) -> str:
        """What the figure is, capitalised for a chart title: "Throughput"."""
        return self.name[:1].upper() + self.name[1:]


STREAM = Metric("stream", "gbps", "throughput", "Gbit/s", "Gbps", 1.0, 2, "Gbps", "gbps", 1.0)
# a stream at a fixed offered load: what it cost the forwarder (kind "cost": a stream
# row's figure, told apart by metadata.workload.offered_bps)
COST = Metric(
    "cost",
    "gbps_per_core",
    "throughput per core of forwarder CPU at the offered load",
    "Gbit/s per core",
    "Gbps/core",
    1.0,
    2,
    "Gbps",
    "gbps",
    1.0,
    cpu_over="gbps",
)
METRICS: dict[str, Metric] = {
    "stream": STREAM,
    "cost": COST,
    "rr": Metric(
        "rr",
        "transactions_per_s",
        "transactions per second",
        "transactions/s",
        "TPS",
        1.0,
        0,
        "kTPS",
        "ktps",
        1000.0,
    ),
    "crr": Metric(
        "crr",
        "connections_per_s",
        "connections per second",
        "connections/s",
        "conn/s",
        1.0,
        0,
        "k conn/s",
        "kconn",
        1000.0,
    ),
    "zero-loss": Metric(
        "zero-loss",
        "zero_loss_pps",
        "zero-loss rate",
        "packets/s",
        "kpps",
        1000.0,
        1,
        "kpps",
        "kpps",
        1000.0,
        header="0-loss kpps",
        cpu_decimals=2,
    ),
}
KEYS = tuple(m.key for m in METRICS.values())
_BY_KEY = {m.key: m for m in METRICS.values()}


def of_key(key: str) -> Metric:
    """The metric whose figure is stored under ``key`` (``transactions_per_s`` -> rr)."""
    return _BY_KEY[key]


def of_kind(kind: str | None) -> Metric:
    """The metric of a workload kind; files from before ``--workload`` (None) ran a stream.
    An unknown kind (a file from a newer tunbench) raises ResultFileError: a figure must
    never be taken from the wrong key."""
    try:
        return METRICS[kind or "stream"]
    except KeyError:
        known = ", ".join(METRICS)
        raise ResultFileError(
            f"workload {kind!r} has no figure this tunbench knows (it knows {known})"
        ) from None


def of_record(rec: Mapping[str, Any]) -> Metric:
    """The metric of a flat record (:func:`tunbench.analysis.results.flat`, its ``workload``;
    a stream with ``offered_bps`` is a cost row)."""
    if (rec.get("workload") or "stream") == "stream" and not missing(rec.get("offered_bps")):
        return COST
    return of_kind(rec.get("workload"))


def value(rec: Mapping[str, Any]) -> float | None:
    """A flat record's primary figure (raw, SI units): None unless the run succeeded and
    measured it."""
    if rec.get("status") != "ok":
        return None
    v = rec.get(of_record(rec).key)
    return None if v is None else float(v)


def limited(recs: Iterable[Mapping[str, Any]]) -> bool:
    """Whether more than half of the successful runs of a capacity row ran out of load
    generator or machine before the forwarder (``capacity_limited``) and measured a cost:
    their Gbit/s says more about the load than about the forwarder."""
    ok = [r for r in recs if r.get("status") == "ok"]
    flags = sum(r.get("capacity_limited") is True for r in ok)
    costs = sum(not missing(r.get(COST.key)) for r in ok)
    return flags * 2 > len(ok) > 0 and costs * 2 > len(ok)


LOAD_BOUND = "load-bound capacity: judged on its cost"
# A run of a row its forwarder bounds whose forwarder had less than this share of the
# row's median forwarder CPU was limited by something else (a busy load CPU, a
# neighbour): its Gbit/s is not the forwarder's capacity.
SHORT_OF_CPU = 0.9
BOUND_CPU = 90.0  # a row's median forwarder CPU, % of one core, from which its CPU bounds it


def short_of_cpu(recs: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Per run of one row: True for a successful unpaced stream run of a row bound by its
    forwarder (not :func:`limited`) whose forwarder CPU (``cost_cpu_pct``) was below
    :data:`SHORT_OF_CPU` of the row's median; such a run does not count for the row's
    Gbit/s. Rows without a forwarder CPU (kernel rows), cost-judged rows and rows whose
    median is under :data:`BOUND_CPU` (a forwarder that sleeps, paces itself or is capped
    by ``--cpu-quota``: its CPU is not what bounds it) keep all."""
    out = [False] * len(recs)
    if not recs or of_record(recs[0]) != STREAM or limited(recs):
        return out
    cpus = [
        (i, float(r["cost_cpu_pct"]))
        for i, r in enumerate(recs)
        if r.get("status") == "ok" and not missing(r.get("cost_cpu_pct"))
    ]
    if len(cpus) < 3:
        return out
    median = statistics.median(c for _, c in cpus)
    if median < BOUND_CPU:
        return out
    for i, c in cpus:
        out[i] = c < SHORT_OF_CPU * median
    return out


def row_metric(recs: Sequence[Mapping[str, Any]]) -> tuple[Metric, str]:
    """The figure a row's runs are judged on, and why: their primary one, except for an
    unpaced stream that is :func:`limited`, judged on its cost (Gbit/s per core)."""
    metric = of_record(recs[0]) if recs else STREAM
    if metric == STREAM and limited(recs):
        return COST, LOAD_BOUND
    return metric, "primary"


def row_values(recs: Sequence[Mapping[str, Any]]) -> list[float]:
    """The figure :func:`row_metric` picks, one per successful run that has it and was not
    :func:`short_of_cpu`."""
    metric, _ = row_metric(recs)
    out = []
    for r, short in zip(recs, short_of_cpu(recs), strict=True):
        v = r.get(metric.key)
        if r.get("status") == "ok" and v is not None and not missing(v) and not short:
            out.append(float(v))
    return out


def verdict_word(metric: Metric, verdict: str, up: str, down: str) -> str:
    """``compare``'s verdict for ``metric``: ``up``/``down`` ("faster"/"slower") say
    whether the figure rose or fell; for a figure where lower is better they swap, so
    "faster" always means better."""
    if metric.higher_is_better or verdict not in (up, down):
        return verdict
    return down if verdict == up else up
