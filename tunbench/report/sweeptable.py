"""A sweep's rows, markdown table and CSV, from its records.

The rows are spec x value: the median and the mean with its 95 % CI of the workload's
primary figure (:mod:`tunbench.analysis.primary`), CPU per unit of it with its CI, the
forwarder's batching metrics; :mod:`tunbench.report.sweeppage` draws them: the figure and
CPU per unit of it against the value, one line per spec, CI bars. A sweep runs one
workload, so it has one figure: Gbit/s for a stream, TPS for rr, conn/s for crr, packets
per second for zero-loss (kpps in the table and chart, pps in the CSV); the CSV's columns
are named after it (``transactions_per_s_mean``, ``cpu_per_ktps``). What is swept and how
the cells are planned is :mod:`tunbench.plan.sweep`'s.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from tunbench.analysis import primary, stats
from tunbench.analysis.boundby import summarize_row
from tunbench.errors import UsageError
from tunbench.report.tables import object_column


class SweepPoint(Protocol):
    """A planned point of the sweep, as the rows need it: the spec as given and the value."""

    @property
    def spec(self) -> str: ...
    @property
    def value(self) -> str: ...


def csv_columns(metric: primary.Metric) -> list[str]:
    """The CSV's columns, in order, for a sweep of ``metric`` (numbers raw, SI units except
    where the name says): the figure's median, mean and CI under its own key, CPU (% of
    one core) per unit of it as ``cpu_per_<unit>``."""
    key, cpu = metric.key, f"cpu_per_{metric.cpu_key}"
    return [
        "spec",
        "param",
        "value",
        "n",
        "failed",
        key,
        f"{key}_mean",
        f"{key}_ci_low",
        f"{key}_ci_high",
        "cpu_avg",
        cpu,
        f"{cpu}_ci_low",
        f"{cpu}_ci_high",
        "fwd_kpps",
        "frame_bytes_read",
        "frame_bytes_written",
        "segs_per_frame",
        "bound_by",
    ]


CSV_COLUMNS = csv_columns(primary.STREAM)  # a stream sweep's, as it always was


@dataclass(frozen=True)
class Over:
    """``--over NAME=V1,V2,...`` parsed."""

    name: str
    values: tuple[str, ...]

    @property
    def flag(self) -> str:
        return f"--{self.name}"


def _nums(recs: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in recs if r.get(key) is not None]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def sweep_metric(recs: Sequence[Mapping[str, Any]]) -> primary.Metric:
    """The figure a sweep's records measured (their workload's); a stream's without any."""
    kinds = {primary.of_record(r) for r in recs}
    if len(kinds) > 1:
        names = ", ".join(sorted(m.kind for m in kinds))
        raise UsageError(f"a sweep's runs have one workload, these have several: {names}")
    return kinds.pop() if kinds else primary.STREAM


def metric_of(df: pd.DataFrame) -> primary.Metric:
    """The figure of a frame from :func:`rows`."""
    return primary.of_kind(str(df.attrs.get("metric", "stream")))


def rows(
    recs: Sequence[Mapping[str, Any]], over: Over, points: Sequence[SweepPoint]
) -> pd.DataFrame:
    """One row per point (spec x value, in plan order), raw numbers: :func:`csv_columns`
    of the records' figure, which ``df.attrs["metric"]`` names (the workload kind).

    A record belongs to a point by its ``sweep`` key (``spec``, ``value``); points without
    a successful run keep NaN numbers."""
    metric = sweep_metric(recs)
    key, cpu = metric.key, f"cpu_per_{metric.cpu_key}"
    out = []
    for p in points:
        mine = [
            r
            for r in recs
            if (r.get("sweep") or {}).get("spec") == p.spec
            and str((r.get("sweep") or {}).get("value")) == p.value
        ]
        good = [r for r in mine if primary.value(r) is not None]
        figures = _nums(good, key)
        cpg = [c for r in good if (c := metric.cpu_per_record(r)) is not None]
        ci, cci = stats.mean_ci(figures), stats.mean_ci(cpg)
        out.append(
            {
                "spec": p.spec,
                "param": over.name,
                "value": p.value,
                "n": len(good),
                "failed": len(mine) - len(good),
                key: _median(figures),
                f"{key}_mean": statistics.fmean(figures) if figures else math.nan,
                f"{key}_ci_low": ci.low if ci else math.nan,
                f"{key}_ci_high": ci.high if ci else math.nan,
                "cpu_avg": _median(_nums(good, "cpu_avg")),
                cpu: statistics.fmean(cpg) if cpg else math.nan,
                f"{cpu}_ci_low": cci.low if cci else math.nan,
                f"{cpu}_ci_high": cci.high if cci else math.nan,
                "fwd_kpps": _median(_nums(good, "fwd_kpps")),
                "frame_bytes_read": _median(_nums(good, "frame_bytes_read")),
                "frame_bytes_written": _median(_nums(good, "frame_bytes_written")),
                "segs_per_frame": _median(_nums(good, "segs_per_frame")),
                "bound_by": summarize_row([r["bound_by"] for r in good if r.get("bound_by")]),
            }
        )
    df = pd.DataFrame(out, columns=csv_columns(metric))
    df["bound_by"] = object_column(df["bound_by"], df.index)  # None: every run failed
    df.attrs["metric"] = metric.kind
    return df


def csv(df: pd.DataFrame) -> str:
    return str(df.to_csv(index=False))


def _fmt(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _cpu_ci(mean: float, low: float, high: float, fmt: str) -> str:
    if math.isnan(low):
        return _fmt(mean, fmt)
    return f"{format(mean, fmt)} ± {format((high - low) / 2, fmt)}"


def formatted(df: pd.DataFrame, over: Over) -> pd.DataFrame:
    """The table as people read it; "-" where a row has no such figure. The figure's
    columns are named after it (``Gbps``, ``TPS``, ``0-loss kpps``; ``Mean ± CI`` in the
    same unit) and so is CPU per unit of it (``CPU/Gbps``, ``CPU/kTPS``)."""
    m = metric_of(df)
    key, cpu = m.key, f"cpu_per_{m.cpu_key}"
    frames = []
    for r, w in zip(df["frame_bytes_read"], df["frame_bytes_written"], strict=True):
        if math.isnan(w):
            frames.append("-")
        elif math.isnan(r) or abs(r - w) <= 0.01 * w:
            frames.append(f"{w:.0f}")
        else:
            frames.append(f"{r:.0f}/{w:.0f}")
    return pd.DataFrame(
        {
            "Variant": df["spec"],
            over.flag: df["value"],
            m.column: [m.number(v) for v in df[key]],
            "Mean ± CI": [
                m.ci(mean, lo, hi)
                for mean, lo, hi in zip(
                    df[f"{key}_mean"], df[f"{key}_ci_low"], df[f"{key}_ci_high"], strict=True
                )
            ],
            "CPU Avg": [_fmt(v, ".0f") + ("%" if not math.isnan(v) else "") for v in df["cpu_avg"]],
            m.cpu_column: [
                _cpu_ci(mean, lo, hi, f".{m.cpu_decimals}f")
                for mean, lo, hi in zip(
                    df[cpu], df[f"{cpu}_ci_low"], df[f"{cpu}_ci_high"], strict=True
                )
            ],
            "fwd kpps": [_fmt(v, ".1f") for v in df["fwd_kpps"]],
            "frame B": frames,
            "segs/frame": [_fmt(v, ".1f") for v in df["segs_per_frame"]],
            "n": [
                f"{n}" + (f" ({f} failed)" if f else "")
                for n, f in zip(df["n"], df["failed"], strict=True)
            ],
            "Bound by": [b or "-" for b in df["bound_by"]],
        }
    )


def markdown(df: pd.DataFrame, over: Over) -> str:
    return str(
        formatted(df, over).to_markdown(index=False, tablefmt="github", disable_numparse=True)
    )


def series(df: pd.DataFrame) -> dict[str, dict[str, list[Any]]]:
    """The chart's data per spec: ``x`` (the values), the figure's and CPU per unit's
    means (``gbps_mean`` and ``cpu_per_gbps`` for a stream; raw, as in the CSV) with their
    CI as ``*_ci_low``/``*_ci_high`` (None where a point has fewer than 3 runs)."""

    def num(v: Any) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    m = metric_of(df)
    keys = [f"{m.key}_mean", f"{m.key}_ci_low", f"{m.key}_ci_high"]
    cpu = f"cpu_per_{m.cpu_key}"
    keys += [cpu, f"{cpu}_ci_low", f"{cpu}_ci_high"]
    out: dict[str, dict[str, list[Any]]] = {}
    for spec, g in df.groupby("spec", sort=False):
        out[str(spec)] = {
            "x": [str(v) for v in g["value"]],
            **{k: [num(v) for v in g[k]] for k in keys},
        }
    return out
