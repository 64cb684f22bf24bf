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
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from tunbench import stats
from tunbench.boundby import summarize_row
from tunbench.results import PRIMARY_KEYS

SPREAD_WARN = 0.10  # (max - min) / median above this gets a warning
CI_WARN = 0.05  # CI half-width above this share of the mean gets a warning
CI_COLUMN = "Mean ± CI"
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


def spread(values: Sequence[float]) -> float:
    """Relative spread ``(max - min) / median``; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else math.inf


def exceeds(values: Sequence[float], tolerance: float = SPREAD_WARN) -> bool:
    """True when the spread is strictly above ``tolerance`` (0.10 = 10 %)."""
    return spread(values) > tolerance


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


def _count(n: int, total: int, what: str) -> str:
    return f"{n} of {total} runs {what}" if total != 1 else f"its run {what}"


def warnings(df: pd.DataFrame) -> list[str]:
    """Every row's :func:`row_warnings`, then what concerns the report as a whole: results
    that should not be read together (different machines or matrix runs), different
    workloads, and which kernel row ``% of kernel`` divides by."""
    out = [note for _, row in df.iterrows() for note in row_warnings(row)]
    for col, what in (("kernel", "kernels"), ("cpu_model", "CPU models")):
        seen = sorted({v for values in df.get(col, []) for v in values})
        if len(seen) > 1:
            out.append(f"warning: results from different {what}: {', '.join(seen)}")
    matrices = sorted({m for ids in df.get("matrix_ids", []) for m in ids})
    if len(matrices) > 1:
        out.append(
            f"warning: rows combine {len(matrices)} matrix runs ({', '.join(matrices)}), "
            "measured at different times; % of kernel pairs each run only with the kernel "
            "run of its own round"
        )
    if "Workload" in df and df["Workload"].nunique() > 1:
        out.append("note: rows have different workloads (see the Workload column)")
    refs: dict[str, list[str]] = {}
    for _, row in df.iterrows():
        if pd.isna(row["% of kernel"]):
            continue
        for ref in row.get("kernel_refs") or []:
            refs.setdefault(ref, []).append(str(row["#"]))
    for ref, nums in refs.items():
        which = ("rows " if len(nums) > 1 else "row ") + ", ".join(nums)
        out.append(
            f"note: % of kernel for {which} is relative to {ref}: each run over the {ref} "
            "run of the same round, then the median"
        )
    return out


def row_warnings(row: pd.Series) -> list[str]:
    """The warnings about one row of :func:`grouped` (the HTML page shows them in the row):
    wide spread or CI, noisy, unsteady or unsampled runs, failures, different code."""
    out = []
    name, n, total = row["Variant"], int(row["n"]), int(row["n"] + row["failed"])
    wide = []
    if exceeds(row["gbps_runs"]):
        wide.append(f"spread {100 * row['spread']:.0f}% of the median (> {100 * SPREAD_WARN:.0f}%)")
    target = row.get("until_ci")
    if pd.notna(row["ci_rel"]) and row["ci_rel"] > CI_WARN:
        wide.append(f"95% CI ±{100 * row['ci_rel']:.1f}% of the mean (> {100 * CI_WARN:.0f}%)")
    if wide:
        tail = f"; target ±{target:g}% not reached" if target and "95%" in wide[-1] else ""
        out.append(f"warning: {name}: {' and '.join(wide)} over {n} runs{tail}")
    if target and pd.notna(row["ci_rel"]) and CI_WARN >= row["ci_rel"] > target / 100:
        out.append(
            f"note: {name}: did not converge to ±{target:g}% in {n} runs "
            f"(95% CI ±{100 * row['ci_rel']:.1f}%)"
        )
    if row["noisy"]:
        out.append(
            f"warning: {name}: {_count(int(row['noisy']), total, 'started on a busy machine')}"
            f" (background CPU up to {row['background_max']:.0f}% of one core)"
        )
    if row["unsteady"]:
        out.append(
            f"note: {name}: {_count(int(row['unsteady']), n, 'not steady')} (throughput of "
            f"its 1 s intervals varies up to {100 * row['cv_max']:.0f}%, CV > 10%)"
        )
    if row["unsampled"]:
        out.append(
            f"warning: {name}: {_count(int(row['unsampled']), n, 'had no CPU sample')} "
            "inside the measured window: no CPU or memory figures"
        )
    for err in row.get("errors") or []:
        out.append(f"failed: {name}: {err}")
    shas = row.get("git_sha") or []
    if len(shas) > 1:
        out.append(
            f"warning: {name}: its runs come from different code "
            f"({', '.join(shas)}); compare them with tunbench compare instead"
        )
    return out


def _num(value: Any, fmt: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt) + suffix


def _gbps(value: Any) -> str:
    """Two decimals, three below 1 Gbit/s (0.058, not 0.06)."""
    return _num(value, ".2f" if value is None or math.isnan(value) or value >= 1 else ".3f")


def _runs_text(row: pd.Series) -> str:
    notes = [
        f"{int(row[k])} {label}"
        for k, label in (("failed", "failed"), ("noisy", "noisy"), ("unsteady", "unsteady"))
        if row[k]
    ]
    return f"{int(row['n'])}" + (f" ({', '.join(notes)})" if notes else "")


def _ci_text(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "-"
    half = (high - low) / 2
    digits = 2 if mean >= 1 else 3
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _frame_text(read: Any, written: Any) -> str:
    """Mean frame size written, as ``read/written`` where the forwarder changed it (the
    ``--gso split`` path re-coalesces), "-" without counters."""
    if written is None or (isinstance(written, float) and math.isnan(written)):
        return "-"
    if read is None or math.isnan(read) or abs(read - written) <= 0.01 * written:
        return f"{written:.0f}"
    return f"{read:.0f}/{written:.0f}"


# each workload column: its header in the text table, format, divisor (kpps = pps / 1000)
WORKLOAD_FORMATS = [
    ("Gbps fwd", "Gbps fwd", ".2f", 1.0),
    ("Gbps rev", "Gbps rev", ".2f", 1.0),
    ("TPS", "TPS", ",.0f", 1.0),
    ("p50 µs", "p50 µs", ".1f", 1.0),
    ("p90 µs", "p90 µs", ".1f", 1.0),
    ("p99 µs", "p99 µs", ".1f", 1.0),
    ("conn/s", "conn/s", ",.0f", 1.0),
    ("0-loss pps", "0-loss kpps", ",.1f", 1000.0),
    ("0-loss Gbps", "0-loss Gbps", ".3f", 1.0),
]


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    """Display strings: Gbps to 2 decimals, CPU in % of one core, Sys busy in % of all
    cores, memory in MB, the forwarder's kpps and frame size (bytes) from its counters;
    UDP and RTT columns only when a row has them."""
    out = pd.DataFrame(
        {
            "#": df["#"],
            "Variant": df["Variant"],
            "Mode": df["Mode"],
            "Offload": df["Offload"],
            "Channel": df["Channel"],
            "Gbps": [_gbps(v) for v in df["Gbps"]],
            CI_COLUMN: [
                _ci_text(m, lo, hi)
                for m, lo, hi in zip(
                    df["gbps_mean"], df["gbps_ci_low"], df["gbps_ci_high"], strict=True
                )
            ],
            "Retr": [_num(v, ".0f") for v in df["Retr"]],
            "CPU Avg": [_num(v, ".0f", "%") for v in df["CPU Avg"]],
            "CPU Max": [_num(v, ".0f", "%") for v in df["CPU Max"]],
            "Sys busy": [_num(v, ".0f", "%") for v in df["Sys busy"]],
            "Mem Avg": [_num(v, ".1f", " MB") for v in df["Mem Avg"]],
            "Mem Max": [_num(v, ".1f", " MB") for v in df["Mem Max"]],
            "Min": [_gbps(v) for v in df["Min"]],
            "Max": [_gbps(v) for v in df["Max"]],
            "n": [_runs_text(row) for _, row in df.iterrows()],
            "% of kernel": [_num(v, ".0f", "%") for v in df["% of kernel"]],
            "CPU/Gbps": [_num(v, ".1f", "%") for v in df["CPU/Gbps"]],
            "fwd kpps": [_num(v, ".1f") for v in df["fwd kpps"]],
            "frame B": [
                _frame_text(r, w) for r, w in zip(df["frame B read"], df["frame B"], strict=True)
            ],
            "segs/frame": [_num(v, ".1f") for v in df["segs/frame"]],
            "Bound by": [v or "-" for v in df["Bound by"]],
        }
    )
    if df["udp"].any():
        out["Loss %"] = [_num(v, ".2f") for v in df["Loss %"]]
        out["pps"] = [_num(v, ",.0f") for v in df["pps"]]
        out["Jitter ms"] = [_num(v, ".3f") for v in df["Jitter ms"]]
    if df["latency"].any():
        out["RTT p50 ms"] = [_num(v, ".3f") for v in df["RTT p50 ms"]]
        out["RTT p99 ms"] = [_num(v, ".3f") for v in df["RTT p99 ms"]]
    for col, header, fmt, scale in WORKLOAD_FORMATS:
        if df[col].notna().any():
            out[header] = [_num(v / scale, fmt) for v in df[col]]
    out.loc[df["n"] == 0, "Gbps"] = "FAILED"
    if df["Workload"].nunique() > 1:
        out.insert(2, "Workload", df["Workload"])
    return out


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
