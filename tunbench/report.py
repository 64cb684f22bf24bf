"""Summary tables from result records: pandas groups and aggregates, tabulate renders.

Records of the same spec, workload and MTU form one row (repeats of a matrix cell):
median, min and max Gbps, the mean with its 95 % confidence interval
(:func:`tunbench.stats.mean_ci`), medians of the rest, and two figures taken per run
before they are summarised: ``% of kernel`` (each run over the kernel run of the same
round of the same matrix, :func:`kernel_reference` names which kernel row) and CPU per
Gbit/s. Records with different workloads are never merged; different kernels or CPU
models, wide intervals, noisy or unsteady runs and runs without samples are warned about.
Numbers stay floats in SI units until :func:`formatted`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from tunbench import stats
from tunbench.boundby import summarize_row
from tunbench.reportnotes import CI_WARN as CI_WARN
from tunbench.reportnotes import SPREAD_WARN as SPREAD_WARN
from tunbench.reportnotes import exceeds as exceeds
from tunbench.reportnotes import row_warnings as row_warnings
from tunbench.reportnotes import spread as spread
from tunbench.reportnotes import warnings as warnings
from tunbench.reporttext import CI_COLUMN
from tunbench.reporttext import _frame_text as _frame_text
from tunbench.reporttext import formatted as formatted
from tunbench.results import PRIMARY_KEYS

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
# the forwarder's own counters (tunbench.fwdmetrics): "-" where it has none
BATCH_COLUMNS = ["fwd kpps", "frame B", "segs/frame"]
EXPLAIN = ["Bound by"]  # after the numbers: what limited the row (tunbench.boundby)
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
KERNEL_REF = "kernel-veth"
ROUTER_REF = "kernel-router"
ROUTER_NO_OFFLOAD_REF = "kernel-router --no-offload"
KERNEL_ROWS = (KERNEL_REF, ROUTER_REF, ROUTER_NO_OFFLOAD_REF)


def kernel_reference(mode: str, offload: str) -> tuple[str, ...]:
    """The kernel rows a row's ``% of kernel`` may divide by, the first one measured wins.

    A forwarder without offload moves one MTU-sized packet per syscall: it is held against
    the router whose veths have TSO/GSO/GRO off. Offload forwarders, unknown external
    ones and the kernel rows themselves are held against the router with offloads on.
    ``kernel-veth`` stands in where no router row was measured (older result sets).
    """
    if offload == "none" and mode != "kernel":
        return (ROUTER_NO_OFFLOAD_REF, ROUTER_REF, KERNEL_REF)
    return (ROUTER_REF, KERNEL_REF)


def _workload(key: str) -> dict[str, Any]:
    try:
        w = json.loads(key)
    except (TypeError, ValueError):
        return {}
    return w if isinstance(w, dict) else {}


def _workload_text(key: str) -> str:
    w = _workload(key)
    if not w:
        return ""
    wl = w.get("workload") or {}
    kind = wl.get("kind") or "stream"
    if kind == "rr":
        parts = [f"rr {wl.get('rr_size')} B"]
    elif kind == "crr":
        parts = ["crr"]
    elif kind == "zero-loss":
        parts = [f"zero-loss {wl.get('pkt_size')} B <= {wl.get('max_loss')}%"]
    else:
        parts = ["udp" if wl.get("udp") else "tcp"]
    if kind in ("stream", "zero-loss") and wl.get("parallel", 1) != 1:
        parts.append(f"-P {wl['parallel']}")
    if wl.get("iperf_procs") == "per-stream":
        parts.append("procs per-stream")
    if wl.get("reverse"):
        parts.append("reverse")
    if wl.get("bidir"):
        parts.append("bidir")
    parts.append(f"mtu {w.get('mtu')}")
    cpus = w.get("cpus") or {}
    if cpus:
        fwd, load = (",".join(map(str, cpus.get(k) or [])) or "-" for k in ("forwarder", "load"))
        parts.append(f"cpus {fwd}:{load}")
    if w.get("latency"):
        parts.append("+ping")
    return " ".join(parts)


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
}
DESCRIPTORS = ("Mode", "Offload", "Channel")  # from a row's first record
MACHINE = ("kernel", "cpu_model", "git_sha")  # every distinct value of a row, for warnings


def row_key(rec: Mapping[str, Any]) -> tuple[str, str]:
    """What puts a record in a row: its spec (or variant) and its workload key."""
    return str(rec.get("spec") or rec["variant"]), str(rec.get("workload_key") or "")


def _round_of(rec: dict[str, Any]) -> tuple[str, int] | None:
    m = rec.get("matrix") or {}
    if not isinstance(m, dict) or m.get("id") is None or m.get("repeat") is None:
        return None
    return str(m["id"]), int(m["repeat"])


def _good(rec: dict[str, Any]) -> bool:
    """A successful run: it has its workload's main figure (rr and crr have no Gbps)."""
    return rec.get("status") == "ok" and any(rec.get(k) is not None for k in PRIMARY_KEYS)


def _has_gbps(rec: dict[str, Any]) -> bool:
    return _good(rec) and rec.get("gbps") is not None


def paired_ratios(recs: Sequence[dict[str, Any]]) -> tuple[list[float | None], list[str | None]]:
    """Per record: its Gbps over the Gbps of its kernel reference's run in the same round of
    the same matrix (same workload), and which reference that was.

    A row (spec and workload) uses the first of :func:`kernel_reference`'s candidates
    that shares a round with it; a run without such a partner, or outside any matrix,
    gets None. So drift between rounds cancels, and no run is ever divided by a kernel run
    of another matrix or day.
    """
    kernel: dict[tuple[str, str, str, int], float] = {}
    for r in recs:
        where = _round_of(r)
        if where and _has_gbps(r) and r["gbps"] > 0:
            kernel[(*row_key(r), *where)] = float(r["gbps"])
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        rows.setdefault(row_key(r), []).append(r)
    chosen: dict[tuple[str, str], str | None] = {}
    for (spec, wk), members in rows.items():
        cands = kernel_reference(
            str(members[0].get("mode") or ""), str(members[0].get("offload") or "")
        )
        rounds = [w for w in map(_round_of, members) if w]
        chosen[(spec, wk)] = next(
            (c for c in cands if any((c, wk, *w) in kernel for w in rounds)), None
        )
    ratios: list[float | None] = []
    refs: list[str | None] = []
    for r in recs:
        spec, wk = row_key(r)
        ref = chosen[(spec, wk)]
        where = _round_of(r)
        base = kernel.get((ref, wk, *where)) if ref and where else None
        ratios.append(float(r["gbps"]) / base if base and _has_gbps(r) else None)
        refs.append(ref if base else None)
    return ratios, refs


def _runs(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: its group key, and numbers only where the run succeeded."""
    ok = [_good(r) for r in recs]

    def measured(key: str) -> list[float]:
        return [
            float(r[key]) if good and r.get(key) is not None else math.nan
            for r, good in zip(recs, ok, strict=True)
        ]

    gbps, cpu = measured("gbps"), measured("cpu_avg")
    ratios, refs = paired_ratios(recs)
    return pd.DataFrame(
        {
            "Variant": [row_key(r)[0] for r in recs],
            "workload_key": [row_key(r)[1] for r in recs],
            **{col: [r.get(col.lower()) or "" for r in recs] for col in DESCRIPTORS},
            "ok": ok,
            "gbps": gbps,
            **{key: measured(key) for key in MEDIANS.values()},
            "kernel_ratio": [math.nan if x is None else 100.0 * x for x in ratios],
            "kernel_ref": refs,
            "cpu_per_gbps": [c / g if g else math.nan for c, g in zip(cpu, gbps, strict=True)],
            "noisy": [bool(r.get("noisy")) for r in recs],
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
        }
    )


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


EXTRA = [
    "failed",
    "spread",
    "gbps_runs",
    "gbps_mean",
    "gbps_ci_low",
    "gbps_ci_high",
    "ci_rel",
    "noisy",
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
]
PROFILE = ["profile_svg", "profile_gbps", "profile_error", "profile_perf_svg"]
# grouped()'s columns: the table's, what warnings and the pages read, the verdict last
_COLUMN_ORDER = [
    *COLUMNS[:-2],
    *EXTRA,
    "kernel_ref",
    *PROFILE,
    *MACHINE,
    *COLUMNS[-2:],
    *BATCH_COLUMNS,
    *EXPLAIN,
]


def grouped(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (spec, workload), raw numbers: a matrix's rows in the order of its
    specs, other rows after them in order of first appearance.

    ``gbps_runs`` keeps the row's per-run Gbps (successful runs) for :func:`warnings` and
    ``compare``; ``gbps_mean``/``gbps_ci_low``/``gbps_ci_high`` are its t-interval (NaN
    with fewer than 3 runs).
    """
    recs = list(records)
    if not recs:
        return pd.DataFrame(columns=_COLUMN_ORDER)
    df = (
        _runs(recs)
        .groupby(["Variant", "workload_key"], sort=False)
        .agg(
            **{col: (col, "first") for col in DESCRIPTORS},
            Gbps=("gbps", "median"),
            **{col: (key, "median") for col, key in MEDIANS.items()},
            Min=("gbps", "min"),
            Max=("gbps", "max"),
            n=("ok", "sum"),
            records=("ok", "size"),
            gbps_runs=("gbps", _present),
            kernel_pct=("kernel_ratio", "median"),
            kernel_refs=("kernel_ref", _distinct),
            cpu_per_gbps=("cpu_per_gbps", "median"),
            noisy=("noisy", "sum"),
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
        )
        .reset_index()
    )
    # a matrix's rows in the order its specs were given, though its rounds are shuffled
    df = df.sort_values("cell", kind="stable", na_position="last").reset_index(drop=True)
    df.insert(0, "#", range(1, len(df) + 1))
    df["failed"] = df["records"] - df["n"]
    df["spread"] = [spread(g) for g in df["gbps_runs"]]
    cis = [stats.mean_ci(g) for g in df["gbps_runs"]]
    df["gbps_mean"] = [c.mean if c else math.nan for c in cis]
    df["gbps_ci_low"] = [c.low if c else math.nan for c in cis]
    df["gbps_ci_high"] = [c.high if c else math.nan for c in cis]
    df["ci_rel"] = [c.rel_half if c else math.nan for c in cis]
    df[CI_COLUMN] = df["gbps_mean"]  # formatted() writes mean ± half-width
    df["Workload"] = [_workload_text(k) for k in df["workload_key"]]
    df["udp"] = [bool((_workload(k).get("workload") or {}).get("udp")) for k in df["workload_key"]]
    df["latency"] = [bool(_workload(k).get("latency")) for k in df["workload_key"]]
    for part in ("svg", "gbps", "error", "perf_svg"):
        df[f"profile_{part}"] = [p.get(part) if p else None for p in df["profile"]]
    # the kernel row the row's runs were paired with (several: each named, comma-separated)
    df["kernel_ref"] = pd.Series(
        [", ".join(refs) if refs else None for refs in df["kernel_refs"]],
        index=df.index,
        dtype=object,
    )
    df["% of kernel"] = df["kernel_pct"]
    df["CPU/Gbps"] = df["cpu_per_gbps"]
    return df[_COLUMN_ORDER].copy()  # one block: later merges would warn of fragmentation


def markdown(records: Iterable[dict[str, Any]]) -> str:
    """The summary table as GitHub markdown, then warnings and failures, one per line."""
    df = grouped(records)
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
    "CPU user",
    "CPU sys",
    *UDP_COLUMNS,
    *RTT_COLUMNS,
    "fwd kpps",
    "frame B",
    "frame B read",
    "segs/frame",
    *WORKLOAD_COLUMNS,
    "failed",
    "noisy",
    "unsteady",
    "Workload",
]


def _export(df: pd.DataFrame) -> pd.DataFrame:
    return df[[*EXPORT, *EXPLAIN]]


def csv(records: Iterable[dict[str, Any]]) -> str:
    return str(_export(grouped(records)).to_csv(index=False))


def json_table(records: Iterable[dict[str, Any]]) -> str:
    return str(_export(grouped(records)).to_json(orient="records", indent=1))
