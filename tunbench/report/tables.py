"""Summary tables from result records: pandas groups and aggregates, tabulate renders.

Records of the same spec, workload and MTU form one row (repeats of a matrix cell). A
row's statistics are made of its workload's primary figure (:mod:`tunbench.analysis.primary`:
Gbit/s of a stream, TPS of rr, conn/s of crr, the zero-loss packet rate): its median,
min and max, the mean with its 95 % confidence interval (:func:`tunbench.analysis.stats.mean_ci`),
and two figures taken per run before they are summarised: ``% of kernel`` (each run over
the kernel run of the same workload in the same round of the same matrix,
:func:`kernel_reference` names which kernel row) and CPU per unit of the figure (per
Gbit/s, per kTPS, ...); medians of the rest. Records with different workloads are never
merged; different kernels or CPU models, wide intervals, noisy or unsteady runs and runs
without samples are warned about (:mod:`tunbench.report.notes`). Numbers stay floats in SI
units until :func:`formatted` (:mod:`tunbench.report.text`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from tunbench.analysis import primary, stats
from tunbench.analysis.boundby import summarize_row
from tunbench.analysis.results import PRIMARY_KEYS
from tunbench.report import costtable, pairing
from tunbench.report.notes import CI_WARN as CI_WARN
from tunbench.report.notes import SPREAD_WARN as SPREAD_WARN
from tunbench.report.notes import exceeds as exceeds
from tunbench.report.notes import row_warnings as row_warnings
from tunbench.report.notes import spread as spread
from tunbench.report.notes import warnings as warnings
from tunbench.report.pairing import KERNEL_REF as KERNEL_REF
from tunbench.report.pairing import KERNEL_ROWS as KERNEL_ROWS
from tunbench.report.pairing import ROUTER_NO_OFFLOAD_REF as ROUTER_NO_OFFLOAD_REF
from tunbench.report.pairing import ROUTER_REF as ROUTER_REF
from tunbench.report.pairing import _round_of
from tunbench.report.pairing import host_of as host_of
from tunbench.report.pairing import kernel_reference as kernel_reference
from tunbench.report.pairing import row_key as row_key
from tunbench.report.text import CI_COLUMN, workload_of, workload_text
from tunbench.report.text import _frame_text as _frame_text
from tunbench.report.text import formatted as formatted

BASE_COLUMNS = [
    "#",
    "Variant",
    "Mode",
    "Offload",
    "Channel",
    "Gbps",
    CI_COLUMN,
    "Retr",
    "CPU Avg",
    "CPU Max",
    "Sys busy",
    "Mem Avg",
    "Mem Max",
]
COLUMNS = [*BASE_COLUMNS, "Min", "Max", "n", "% of kernel", "CPU/Gbps"]
# the forwarder's own counters (tunbench.analysis.fwdmetrics): "-" where it has none
BATCH_COLUMNS = ["fwd kpps", "frame B", "segs/frame"]
EXPLAIN = ["Bound by"]  # after the numbers: what limited the row (tunbench.analysis.boundby)
UDP_COLUMNS = ["Loss %", "pps", "Jitter ms"]  # shown when a row is a UDP workload
RTT_COLUMNS = ["RTT p50 ms", "RTT p99 ms"]  # shown when a row ran the --latency probe
# shown when some row has them (--bidir, --workload rr|crr|zero-loss), "-" in the others
WORKLOAD_COLUMNS = {
    "Gbps fwd": "gbps_fwd",
    "Gbps rev": "gbps_rev",
    "TPS": "transactions_per_s",
    "p50 µs": "latency_p50_us",
    "p90 µs": "latency_p90_us",
    "p99 µs": "latency_p99_us",
    "conn/s": "connections_per_s",
    "0-loss pps": "zero_loss_pps",
    "0-loss Gbps": "zero_loss_gbps",
}
# Table column <- record key, the median over a row's successful runs.
MEDIANS = {
    "Retr": "retransmits",
    "CPU Avg": "cpu_avg",
    "CPU Max": "cpu_max",
    "Sys busy": "system_busy_avg",
    "Mem Avg": "mem_avg_mb",
    "Mem Max": "mem_max_mb",
    "CPU user": "cpu_user_avg",
    "CPU sys": "cpu_sys_avg",
    "Loss %": "lost_percent",
    "pps": "pps",
    "Jitter ms": "jitter_ms",
    "RTT p50 ms": "rtt_p50_ms",
    "RTT p99 ms": "rtt_p99_ms",
    "fwd kpps": "fwd_kpps",
    "frame B": "frame_bytes_written",
    "frame B read": "frame_bytes_read",
    "segs/frame": "segs_per_frame",
    **WORKLOAD_COLUMNS,
    **costtable.MEDIANS,
}
DESCRIPTORS = ("Mode", "Offload", "Channel")  # from a row's first record
# every distinct value of a row, for warnings
MACHINE = ("kernel", "cpu_model", "git_sha", "host")


def paired_ratios(recs: Sequence[dict[str, Any]]) -> tuple[list[float | None], list[str | None]]:
    """:func:`tunbench.report.pairing.paired_ratios` with this module's
    :func:`kernel_reference` (the hook a test or a caller may replace)."""
    return pairing.paired_ratios(recs, kernel_reference)


def _good(rec: dict[str, Any]) -> bool:
    """A successful run: it has its workload's main figure (rr and crr have no Gbps)."""
    return rec.get("status") == "ok" and any(rec.get(k) is not None for k in PRIMARY_KEYS)


def _short_of_cpu(recs: list[dict[str, Any]], by_host: bool) -> list[bool]:
    """Per record: a run of a forwarder-bound row whose forwarder had too little CPU to be
    what bound it (:func:`tunbench.analysis.primary.short_of_cpu`): left out of the
    row's primary figure, counted for its notes."""
    rows: dict[tuple[str, str, str], list[int]] = {}
    for i, r in enumerate(recs):
        rows.setdefault((host_of(r) if by_host else "", *row_key(r)), []).append(i)
    out = [False] * len(recs)
    for idx in rows.values():
        for i, s in zip(idx, primary.short_of_cpu([recs[i] for i in idx]), strict=True):
            out[i] = s
    return out


def _runs(recs: list[dict[str, Any]], by_host: bool) -> pd.DataFrame:
    """One row per record: its group key, and numbers only where the run succeeded."""
    ok = [_good(r) for r in recs]

    def measured(key: str) -> list[float]:
        return [
            float(r[key]) if good and r.get(key) is not None else math.nan
            for r, good in zip(recs, ok, strict=True)
        ]

    gbps, cpu = measured("gbps"), measured("cpu_avg")
    metrics = [primary.of_record(r) for r in recs]
    short = _short_of_cpu(recs, by_host)
    figures = [
        math.nan if (v := primary.value(r)) is None or s else v
        for r, s in zip(recs, short, strict=True)
    ]
    ratios, refs = paired_ratios(recs)
    return pd.DataFrame(
        {
            "Host": [host_of(r) if by_host else "" for r in recs],
            "Variant": [row_key(r)[0] for r in recs],
            "workload_key": [row_key(r)[1] for r in recs],
            **{col: [r.get(col.lower()) or "" for r in recs] for col in DESCRIPTORS},
            "ok": ok,
            "gbps": gbps,
            "primary_metric": [m.key for m in metrics],
            "primary": figures,
            "cpu_per_primary": [  # CPU over the figure, or what it divides (a cost's Gbps)
                math.nan if (v := m.cpu_per(c, g if m.cpu_over else f)) is None else v
                for m, c, f, g in zip(metrics, cpu, figures, gbps, strict=True)
            ],
            **{key: measured(key) for key in MEDIANS.values()},
            "kernel_ratio": [math.nan if x is None else 100.0 * x for x in ratios],
            "kernel_ref": refs,
            "cpu_per_gbps": [c / g if g else math.nan for c, g in zip(cpu, gbps, strict=True)],
            "noisy": [bool(r.get("noisy")) for r in recs],
            "short_cpu": short,
            "background": measured("background_cpu_pct"),
            "unsteady": [
                good and r.get("steady") is False for r, good in zip(recs, ok, strict=True)
            ],
            "interval_cv": measured("interval_cv"),
            "unsampled": [good and r.get("samples") == 0 for r, good in zip(recs, ok, strict=True)],
            "error": [str(r.get("error")) if r.get("status") != "ok" else None for r in recs],
            "bound_by": [
                r.get("bound_by") if good else None for r, good in zip(recs, ok, strict=True)
            ],
            "profile": [r.get("profile") or None for r in recs],
            "matrix_id": [(_round_of(r) or (None,))[0] for r in recs],
            "cell": [
                float((r.get("matrix") or {}).get("cell", math.nan))
                if (r.get("matrix") or {}).get("cell") is not None
                else math.nan
                for r in recs
            ],
            "until_ci": [(r.get("matrix") or {}).get("until_ci") for r in recs],
            **{key: [str(r.get(key)) for r in recs] for key in MACHINE},
            **costtable.run_columns(recs, ok),
        }
    )


def object_column(values: Iterable[Any], index: pd.Index) -> pd.Series:
    """A column in which a missing value stays None. Beside strings pandas would store
    NaN, which is truthy (``v or "-"`` keeps it) and prints as "nan"."""
    return pd.Series([None if primary.missing(v) else v for v in values], index=index, dtype=object)


def _present(values: pd.Series) -> list[Any]:
    return list(values.dropna())


def _distinct(values: pd.Series) -> list[str]:
    return sorted(set(_present(values)))


def _first(values: pd.Series) -> Any:
    present = _present(values)
    return present[0] if present else None


def _max(values: pd.Series) -> float:
    present = _present(values)
    return max(present) if present else math.nan


# CPU per unit of a workload's figure other than Gbit/s: CPU/kTPS, CPU/k conn/s, CPU/kpps
CPU_UNIT_COLUMNS = [
    m.cpu_column for m in primary.METRICS.values() if m.cpu_column != primary.STREAM.cpu_column
]
# the row's primary figure (tunbench.analysis.primary): which, its unit, its statistics
PRIMARY_COLUMNS = [
    *(f"primary_{k}" for k in ("metric", "unit", "median", "mean", "ci_low", "ci_high")),
    *("primary_min", "primary_max", "cpu_per_primary", "cpu_per_primary_unit"),
]
EXTRA = [
    "failed",
    "spread",
    *PRIMARY_COLUMNS,
    "primary_runs",
    *CPU_UNIT_COLUMNS,
    "gbps_runs",
    "gbps_mean",
    "gbps_ci_low",
    "gbps_ci_high",
    "ci_rel",
    "noisy",
    "short_cpu",
    "background_max",
    "unsteady",
    "cv_max",
    "unsampled",
    "matrix_ids",
    "until_ci",
    "kernel_refs",
    "workload_key",
    "Workload",
    "udp",
    "latency",
    "errors",
    "CPU user",
    "CPU sys",
    *UDP_COLUMNS,
    *RTT_COLUMNS,
    "frame B read",
    *WORKLOAD_COLUMNS,
    *costtable.MEDIANS,
    *costtable.COLUMNS,
]
PROFILE = ["profile_svg", "profile_gbps", "profile_error", "profile_perf_svg"]
# grouped()'s columns: the table's, what warnings and the pages read, the verdict last
_COLUMN_ORDER = [
    COLUMNS[0],
    "Host",  # "" unless grouped(by_host=True)
    *COLUMNS[1:-2],
    *EXTRA,
    "kernel_ref",
    *PROFILE,
    *MACHINE,
    *COLUMNS[-2:],
    *BATCH_COLUMNS,
    *EXPLAIN,
]


def _judge_limited_on_cost(df: pd.DataFrame) -> None:
    """A capacity row the load generator or the machine ran out of first
    (``capacity_limited``) is judged on its cost, Gbit/s per core, where most of its runs
    measured one (:func:`tunbench.analysis.primary.limited`): its primary figure, interval,
    convergence note and ``compare`` verdict become the cost's, while Gbps, Min and Max
    keep the capacity as a lower bound."""
    switch = [
        m == primary.STREAM.key and bool(limited) and len(runs) * 2 > int(n)
        for m, limited, runs, n in zip(
            df["primary_metric"], df["capacity_limited"], df["cost_runs"], df["n"], strict=True
        )
    ]
    if not any(switch):
        return
    df["primary_metric"] = [
        primary.COST.key if s else m for s, m in zip(switch, df["primary_metric"], strict=True)
    ]
    df["primary_runs"] = [
        list(c) if s else p
        for s, c, p in zip(switch, df["cost_runs"], df["primary_runs"], strict=True)
    ]
    for col, how in (("median", "median"), ("min", "min"), ("max", "max")):
        df[f"primary_{col}"] = [
            float(getattr(pd.Series(c, dtype=float), how)()) if s else v
            for s, c, v in zip(switch, df["cost_runs"], df[f"primary_{col}"], strict=True)
        ]


def grouped(records: Iterable[dict[str, Any]], by_host: bool = False) -> pd.DataFrame:
    """One row per (spec, workload), raw numbers: a matrix's rows in the order of its
    specs, other rows after them in order of first appearance. ``by_host``: one row per
    (host, spec, workload), hosts in alphabetical order, the ``Host`` column naming each
    (rows of different hosts are never merged; ``% of kernel`` always pairs a run with
    its own host's kernel run, by host or not).

    ``primary_runs`` keeps the row's per-run primary figure (successful runs: Gbps, TPS,
    conn/s or pps) for :func:`warnings` and ``compare``; ``primary_mean``,
    ``primary_ci_low`` and ``primary_ci_high`` are its t-interval (NaN with fewer than 3
    runs), ``primary_median``/``primary_min``/``primary_max`` what their names say, and
    ``Mean ± CI`` and ``% of kernel`` are made of it. ``gbps_runs``, ``gbps_mean``,
    ``gbps_ci_low``/``gbps_ci_high``, ``Gbps``, ``Min`` and ``Max`` stay Gbit/s figures
    (the same as the primary ones for a stream row; NaN where a workload has no Gbps);
    ``CPU/Gbps`` is given for stream rows only, ``CPU/kTPS`` etc. for the others.
    """
    recs = list(records)
    if not recs:
        return pd.DataFrame(columns=_COLUMN_ORDER)
    df = (
        _runs(recs, by_host)
        .groupby(["Host", "Variant", "workload_key"], sort=False)
        .agg(
            **{col: (col, "first") for col in DESCRIPTORS},
            Gbps=("gbps", "median"),
            **{col: (key, "median") for col, key in MEDIANS.items()},
            Min=("gbps", "min"),
            Max=("gbps", "max"),
            n=("ok", "sum"),
            records=("ok", "size"),
            gbps_runs=("gbps", _present),
            primary_metric=("primary_metric", "first"),
            primary_median=("primary", "median"),
            primary_min=("primary", "min"),
            primary_max=("primary", "max"),
            primary_runs=("primary", _present),
            cost_runs=("gbps_per_core", _present),
            cpu_per_primary=("cpu_per_primary", "median"),
            kernel_pct=("kernel_ratio", "median"),
            kernel_refs=("kernel_ref", _distinct),
            cpu_per_gbps=("cpu_per_gbps", "median"),
            noisy=("noisy", "sum"),
            short_cpu=("short_cpu", "sum"),
            background_max=("background", _max),
            unsteady=("unsteady", "sum"),
            cv_max=("interval_cv", _max),
            unsampled=("unsampled", "sum"),
            matrix_ids=("matrix_id", _distinct),
            until_ci=("until_ci", _first),
            cell=("cell", "min"),
            errors=("error", _distinct),
            profile=("profile", _first),
            **{"Bound by": ("bound_by", lambda v: summarize_row(_present(v)))},
            **{key: (key, _distinct) for key in MACHINE},
            **costtable.AGG,
        )
        .reset_index()
    )
    costtable.finish(df)
    _judge_limited_on_cost(df)
    # a matrix's rows in the order its specs were given, though its rounds are shuffled
    df = df.sort_values(["Host", "cell"], kind="stable", na_position="last")
    df = df.reset_index(drop=True)
    df.insert(0, "#", range(1, len(df) + 1))
    df["failed"] = df["records"] - df["n"]
    df["Bound by"] = object_column(df["Bound by"], df.index)  # None: every run failed
    df["spread"] = [spread(g) for g in df["primary_runs"]]
    for prefix, runs in (("gbps", df["gbps_runs"]), ("primary", df["primary_runs"])):
        cis = [stats.mean_ci(g) for g in runs]
        df[f"{prefix}_mean"] = [c.mean if c else math.nan for c in cis]
        df[f"{prefix}_ci_low"] = [c.low if c else math.nan for c in cis]
        df[f"{prefix}_ci_high"] = [c.high if c else math.nan for c in cis]
    df["ci_rel"] = [c.rel_half if c else math.nan for c in cis]  # the primary figure's
    df[CI_COLUMN] = df["primary_mean"]  # formatted() writes mean ± half-width, with its unit
    metric = [primary.of_key(k) for k in df["primary_metric"]]
    df["primary_unit"] = [m.unit for m in metric]
    df["cpu_per_primary_unit"] = [m.cpu_label for m in metric]
    for col in CPU_UNIT_COLUMNS:
        df[col] = [
            v if m.cpu_column == col else math.nan
            for m, v in zip(metric, df["cpu_per_primary"], strict=True)
        ]
    df["Workload"] = [workload_text(k) for k in df["workload_key"]]
    df["udp"] = [
        bool((workload_of(k).get("workload") or {}).get("udp")) for k in df["workload_key"]
    ]
    df["latency"] = [bool(workload_of(k).get("latency")) for k in df["workload_key"]]
    for part in ("svg", "gbps", "error", "perf_svg"):
        df[f"profile_{part}"] = object_column(
            (p.get(part) if p else None for p in df["profile"]), df.index
        )
    # the kernel row the row's runs were paired with (several: each named, comma-separated)
    df["kernel_ref"] = object_column(
        (", ".join(refs) if refs else None for refs in df["kernel_refs"]), df.index
    )
    df["% of kernel"] = df["kernel_pct"]
    # CPU over a Gbit/s a workload does not aim at (zero-loss's small packets) misleads
    gbit = df["primary_metric"].isin([primary.STREAM.key, primary.COST.key])
    df["CPU/Gbps"] = df["cpu_per_gbps"].where(gbit)
    return df[_COLUMN_ORDER].copy()  # one block: later merges would warn of fragmentation


def markdown(records: Iterable[dict[str, Any]], by_host: bool = False) -> str:
    """The summary table as GitHub markdown, then warnings and failures, one per line."""
    df = grouped(records, by_host)
    if df.empty:
        return "(no results)"
    text = str(formatted(df).to_markdown(index=False, tablefmt="github", disable_numparse=True))
    notes = warnings(df)
    return text + ("\n\n" + "\n".join(notes) if notes else "")


EXPORT = [
    *(c for c in COLUMNS if c != CI_COLUMN),
    "gbps_mean",
    "gbps_ci_low",
    "gbps_ci_high",
    *PRIMARY_COLUMNS,
    "CPU user",
    "CPU sys",
    *UDP_COLUMNS,
    *RTT_COLUMNS,
    "fwd kpps",
    "frame B",
    "frame B read",
    "segs/frame",
    *WORKLOAD_COLUMNS,
    *CPU_UNIT_COLUMNS,
    *costtable.EXPORT,
    "failed",
    "noisy",
    "unsteady",
    "Workload",
]


def _export(df: pd.DataFrame, by_host: bool) -> pd.DataFrame:
    return df[[*(["Host"] if by_host else []), *EXPORT, *EXPLAIN]]


def csv(records: Iterable[dict[str, Any]], by_host: bool = False) -> str:
    return str(_export(grouped(records, by_host), by_host).to_csv(index=False))


def json_table(records: Iterable[dict[str, Any]], by_host: bool = False) -> str:
    return str(_export(grouped(records, by_host), by_host).to_json(orient="records", indent=1))
