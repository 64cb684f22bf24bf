"""Display strings of the summary table: :func:`formatted` turns
:func:`tunbench.report.grouped`'s raw numbers (SI units, floats) into what the markdown and
HTML tables show: Gbps to 2 decimals, CPU in % of one core, memory in MB, "-" where a row
has no such figure.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

CI_COLUMN = "Mean ± CI"


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
