"""Summary tables from result records: pandas builds the frame, tabulate renders it.

Numbers stay floats in SI units until here; this module is the only place that formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

COLUMNS = [
    "#",
    "Variant",
    "Mode",
    "Offload",
    "Channel",
    "Gbps",
    "Retr",
    "CPU Avg",
    "CPU Max",
    "Mem Avg",
    "Mem Max",
]


def frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per flat record, raw numbers, the table's column names."""
    rows = []
    for i, r in enumerate(records, 1):
        rows.append(
            {
                "#": i,
                "Variant": r["spec"] or r["variant"],
                "Mode": r.get("mode") or "",
                "Offload": r.get("offload") or "",
                "Channel": r.get("channel") or "",
                "Gbps": r.get("gbps"),
                "Retr": r.get("retransmits"),
                "CPU Avg": r.get("cpu_avg"),
                "CPU Max": r.get("cpu_max"),
                "Mem Avg": r.get("mem_avg_mb"),
                "Mem Max": r.get("mem_max_mb"),
                "Status": r.get("status"),
                "Error": r.get("error"),
            }
        )
    return pd.DataFrame(rows, columns=[*COLUMNS, "Status", "Error"])


def _num(value: Any, fmt: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt) + suffix


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    """Display strings: Gbps to 2 decimals, CPU in % of one core, memory in MB."""
    out = pd.DataFrame(
        {
            "#": df["#"],
            "Variant": df["Variant"],
            "Mode": df["Mode"],
            "Offload": df["Offload"],
            "Channel": df["Channel"],
            "Gbps": [_num(v, ".2f") for v in df["Gbps"]],
            "Retr": [_num(v, ".0f") for v in df["Retr"]],
            "CPU Avg": [_num(v, ".0f", "%") for v in df["CPU Avg"]],
            "CPU Max": [_num(v, ".0f", "%") for v in df["CPU Max"]],
            "Mem Avg": [_num(v, ".1f", " MB") for v in df["Mem Avg"]],
            "Mem Max": [_num(v, ".1f", " MB") for v in df["Mem Max"]],
        }
    )
    failed = df["Status"] != "ok"
    if failed.any():
        out.loc[failed, "Gbps"] = "FAILED"
    return out


def markdown(records: Iterable[dict[str, Any]]) -> str:
    """The summary table as GitHub markdown, plus one line per failed cell."""
    df = frame(records)
    text = str(formatted(df).to_markdown(index=False, tablefmt="github", disable_numparse=True))
    notes = [
        f"- #{row['#']} {row['Variant']}: {row['Error']}"
        for _, row in df.iterrows()
        if row["Status"] != "ok"
    ]
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def csv(records: Iterable[dict[str, Any]]) -> str:
    return str(frame(records).to_csv(index=False))


def json_table(records: Iterable[dict[str, Any]]) -> str:
    return str(frame(records).to_json(orient="records", indent=1))
