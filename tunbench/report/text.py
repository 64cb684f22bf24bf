"""Display strings of the summary table: :func:`formatted` turns
:func:`tunbench.report.tables.grouped`'s raw numbers (SI units, floats) into what the markdown and
HTML tables show: Gbps to 2 decimals, CPU in % of one core, memory in MB, "-" where a row
has no such figure.

``Mean ± CI``, ``Min`` and ``Max`` are a row's primary figure (:mod:`tunbench.analysis.primary`):
bare numbers in Gbit/s for a stream row, the unit written after the number for the other
workloads ("15,332 ± 232 TPS", "63.5 kpps"), so a table that mixes them reads unambiguously.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from tunbench.analysis import primary

CI_COLUMN = "Mean ± CI"


def workload_of(key: str) -> dict[str, Any]:
    """A row's workload key (:func:`tunbench.analysis.results.workload_key`) as a dict; {}
    if none."""
    try:
        w = json.loads(key)
    except (TypeError, ValueError):
        return {}
    return w if isinstance(w, dict) else {}


def workload_text(key: str) -> str:
    """The Workload column: ``rr 64 B mtu 1500``, ``tcp -P 4 bidir mtu 1500 +ping``."""
    w = workload_of(key)
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
    if wl.get("window"):
        parts.append(f"win {int(wl['window']) // 1024}K")
    if wl.get("offered_bps"):
        parts.append(f"offered {float(wl['offered_bps']) / 1e9:.4g}G")
    parts.append(f"mtu {w.get('mtu')}")
    cpus = w.get("cpus") or {}
    if cpus:
        fwd, load = (",".join(map(str, cpus.get(k) or [])) or "-" for k in ("forwarder", "load"))
        parts.append(f"cpus {fwd}:{load}")
    if w.get("latency"):
        parts.append("+ping")
    return " ".join(parts)


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
        for k, label in (
            ("failed", "failed"),
            ("short", "short"),
            ("noisy", "noisy"),
            ("unsteady", "unsteady"),
        )
        if row.get(k)
    ]
    return f"{int(row['n'])}" + (f" ({', '.join(notes)})" if notes else "")


def capacity_text(gbps: Any, limited: Any, bound: Any) -> str:
    """The Gbps column: the median, or for a capacity the load generator or the machine
    ran out of first ``≥ 12.20, load-bound`` (the forwarder could have moved more)."""
    text = _gbps(gbps)
    return f"≥ {text}, {bound}-bound" if limited is True and text != "-" else text


# cost and diagnostic columns: header, record column, format, scale; shown when a row has it
COST_FORMATS = [
    ("Gbps/core", ".2f", 1.0),
    ("µs/MB", ".1f", 1.0),
    ("µs/pkt", ".2f", 1.0),
    ("runq %", ".0f", 1.0),
    ("sys/pkt", ".2f", 1.0),
    ("cs/pkt", ".3f", 1.0),
    ("migr/pkt", ".4f", 1.0),
    ("instr/pkt", ",.0f", 1.0),
    ("cyc/pkt", ",.0f", 1.0),
]


def _metrics(df: pd.DataFrame) -> list[primary.Metric]:
    return [primary.of_key(str(k)) for k in df["primary_metric"]]


def _figure(df: pd.DataFrame, col: str) -> list[str]:
    """A primary-figure column (``primary_min``...): stream rows bare Gbit/s, others with
    their unit."""
    return [
        m.number(v, unit=m != primary.STREAM) for m, v in zip(_metrics(df), df[col], strict=True)
    ]


def _ci_text(df: pd.DataFrame) -> list[str]:
    return [
        m.ci(mean, lo, hi, unit=m != primary.STREAM)
        for m, mean, lo, hi in zip(
            _metrics(df),
            df["primary_mean"],
            df["primary_ci_low"],
            df["primary_ci_high"],
            strict=True,
        )
    ]


def _frame_text(read: Any, written: Any) -> str:
    """Mean frame size written, as ``read/written`` where the forwarder changed it (the
    ``--gso split`` path re-coalesces), "-" without counters."""
    if written is None or (isinstance(written, float) and math.isnan(written)):
        return "-"
    if read is None or math.isnan(read) or abs(read - written) <= 0.01 * written:
        return f"{written:.0f}"
    return f"{read:.0f}/{written:.0f}"


# each workload column: its header in the text table, format, divisor (kpps = pps / 1000),
# suffix; a workload's CPU per unit of its figure right after the figure
WORKLOAD_FORMATS = [
    ("Gbps fwd", "Gbps fwd", ".2f", 1.0, ""),
    ("Gbps rev", "Gbps rev", ".2f", 1.0, ""),
    ("TPS", "TPS", ",.0f", 1.0, ""),
    ("CPU/kTPS", "CPU/kTPS", ".1f", 1.0, "%"),
    ("p50 µs", "p50 µs", ".1f", 1.0, ""),
    ("p90 µs", "p90 µs", ".1f", 1.0, ""),
    ("p99 µs", "p99 µs", ".1f", 1.0, ""),
    ("conn/s", "conn/s", ",.0f", 1.0, ""),
    ("CPU/k conn/s", "CPU/k conn/s", ".1f", 1.0, "%"),
    ("0-loss pps", "0-loss kpps", ",.1f", 1000.0, ""),
    ("CPU/kpps", "CPU/kpps", ".2f", 1.0, "%"),
    ("0-loss Gbps", "0-loss Gbps", ".3f", 1.0, ""),
]


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    """Display strings: Gbps to 2 decimals, CPU in % of one core, Sys busy in % of all
    cores, memory in MB, the forwarder's kpps and frame size (bytes) from its counters;
    UDP, RTT and workload columns only when a row has them; ``Mean ± CI``, ``Min`` and
    ``Max`` in the row's primary figure."""
    out = pd.DataFrame(
        {
            "#": df["#"],
            "Variant": df["Variant"],
            "Mode": df["Mode"],
            "Offload": df["Offload"],
            "Channel": df["Channel"],
            "Gbps": [
                capacity_text(v, lim, b)
                for v, lim, b in zip(
                    df["Gbps"], df["capacity_limited"], df["capacity_bound"], strict=True
                )
            ],
            CI_COLUMN: _ci_text(df),
            "Retr": [_num(v, ".0f") for v in df["Retr"]],
            "CPU Avg": [_num(v, ".0f", "%") for v in df["CPU Avg"]],
            "CPU Max": [_num(v, ".0f", "%") for v in df["CPU Max"]],
            "Sys busy": [_num(v, ".0f", "%") for v in df["Sys busy"]],
            "Mem Avg": [_num(v, ".1f", " MB") for v in df["Mem Avg"]],
            "Mem Max": [_num(v, ".1f", " MB") for v in df["Mem Max"]],
            "Min": _figure(df, "primary_min"),
            "Max": _figure(df, "primary_max"),
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
    for col, header, fmt, scale, suffix in WORKLOAD_FORMATS:
        if df[col].notna().any():
            out[header] = [_num(v / scale, fmt, suffix) for v in df[col]]
    for col, fmt, scale in COST_FORMATS:
        if df[col].notna().any():
            at = list(out.columns).index("Bound by")
            out.insert(at, col, [_num(v / scale, fmt) for v in df[col]])
    if (df["Placement"].fillna("") != "").any():
        at = list(out.columns).index("Gbps")
        out.insert(at, "Placement", [v or "-" for v in df["Placement"].fillna("")])
    if df["primary_metric"].isin([primary.STREAM.key, primary.COST.key]).any():
        out.loc[df["n"] == 0, "Gbps"] = "FAILED"
    else:  # no row moves bulk data (rr, crr, zero-loss only): no Gbit/s columns to show
        out = out.drop(columns=["Gbps", "Retr", "CPU/Gbps"])
        out.loc[df["n"] == 0, CI_COLUMN] = "FAILED"
    if df["Workload"].nunique() > 1:
        out.insert(2, "Workload", df["Workload"])
    if "Host" in df and (df["Host"] != "").any():  # a table by host
        out.insert(1, "Host", df["Host"])
    return out
