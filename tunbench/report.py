"""Summary tables from result records: pandas groups and aggregates, tabulate renders.

Records of the same spec, workload and MTU form one row (repeats of a matrix cell):
median, min and max Gbps, medians of the rest, ``% of kernel`` against the kernel row
:func:`kernel_reference` picks (same workload), and CPU per Gbit/s. Records with different
workloads are never merged; different kernels or CPU models in one report are warned
about. Numbers stay floats in SI units until :func:`formatted`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from tunbench.boundby import summarize_row

SPREAD_WARN = 0.10  # (max - min) / median above this gets a warning
BASE_COLUMNS = [
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
COLUMNS = [*BASE_COLUMNS, "Min", "Max", "n", "% of kernel", "CPU/Gbps"]
EXPLAIN = ["Bound by"]  # after the numbers: what limited the row (tunbench.boundby)
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


def _workload_text(key: str) -> str:
    try:
        w = json.loads(key)
    except (TypeError, ValueError):
        return ""
    wl = w.get("workload") or {}
    parts = ["udp" if wl.get("udp") else "tcp"]
    if wl.get("parallel", 1) != 1:
        parts.append(f"-P {wl['parallel']}")
    if wl.get("reverse"):
        parts.append("reverse")
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
    "Mem Avg": "mem_avg_mb",
    "Mem Max": "mem_max_mb",
}
DESCRIPTORS = ("Mode", "Offload", "Channel")  # from a row's first record
MACHINE = ("kernel", "cpu_model", "git_sha")  # every distinct value of a row, for warnings


def row_key(rec: Mapping[str, Any]) -> tuple[str, str]:
    """What puts a record in a row: its spec (or variant) and its workload key."""
    return str(rec.get("spec") or rec["variant"]), str(rec.get("workload_key") or "")


def _runs(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: its group key, and numbers only where the run succeeded."""
    ok = [r.get("status") == "ok" and r.get("gbps") is not None for r in recs]

    def measured(key: str) -> list[float]:
        return [
            float(r[key]) if good and r.get(key) is not None else math.nan
            for r, good in zip(recs, ok, strict=True)
        ]

    return pd.DataFrame(
        {
            "Variant": [row_key(r)[0] for r in recs],
            "workload_key": [row_key(r)[1] for r in recs],
            **{col: [r.get(col.lower()) or "" for r in recs] for col in DESCRIPTORS},
            "ok": ok,
            "gbps": measured("gbps"),
            **{key: measured(key) for key in MEDIANS.values()},
            "error": [str(r.get("error")) if r.get("status") != "ok" else None for r in recs],
            "bound_by": [
                r.get("bound_by") if good else None for r, good in zip(recs, ok, strict=True)
            ],
            "profile": [r.get("profile") or None for r in recs],
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


def grouped(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (spec, workload) in order of first appearance, raw numbers.

    ``gbps_runs`` keeps the row's per-run Gbps (successful runs) for :func:`warnings`.
    """
    recs = list(records)
    if not recs:
        return pd.DataFrame(
            columns=[*COLUMNS, *EXPLAIN, "failed", "spread", "workload_key", "Workload"]
        )
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
            errors=("error", _distinct),
            profile=("profile", _first),
            **{"Bound by": ("bound_by", lambda v: summarize_row(_present(v)))},
            **{key: (key, _distinct) for key in MACHINE},
        )
        .reset_index()
    )
    df.insert(0, "#", range(1, len(df) + 1))
    df["failed"] = df["records"] - df["n"]
    df["spread"] = [spread(g) for g in df["gbps_runs"]]
    df["Workload"] = [_workload_text(k) for k in df["workload_key"]]
    for part in ("svg", "gbps", "error", "perf_svg"):
        df[f"profile_{part}"] = [p.get(part) if p else None for p in df["profile"]]
    kernel = df[df["Variant"].isin(KERNEL_ROWS) & (df["Gbps"] > 0)]
    gbps_of = kernel.set_index(["Variant", "workload_key"])["Gbps"].to_dict()
    refs = [
        next((ref for ref in kernel_reference(m, o) if (ref, w) in gbps_of), None)
        for m, o, w in zip(df["Mode"], df["Offload"], df["workload_key"], strict=True)
    ]
    df["kernel_ref"] = pd.Series(refs, index=df.index, dtype=object)
    df["% of kernel"] = [
        100.0 * g / gbps_of[(ref, w)] if ref is not None else math.nan
        for g, ref, w in zip(df["Gbps"], refs, df["workload_key"], strict=True)
    ]
    df["CPU/Gbps"] = df["CPU Avg"] / df["Gbps"].where(df["Gbps"] != 0)
    extra = ["failed", "spread", "gbps_runs", "workload_key", "Workload", "errors", "kernel_ref"]
    profile = ["profile_svg", "profile_gbps", "profile_error", "profile_perf_svg"]
    return df[[*COLUMNS[:-2], *extra, *profile, *MACHINE, *COLUMNS[-2:], *EXPLAIN]]


def warnings(df: pd.DataFrame) -> list[str]:
    """Spread above 10 %, failed runs, and machines that differ within one report."""
    out = [note for _, row in df.iterrows() for note in row_warnings(row)]
    for col, what in (("kernel", "kernels"), ("cpu_model", "CPU models")):
        seen = sorted({v for values in df.get(col, []) for v in values})
        if len(seen) > 1:
            out.append(f"warning: results from different {what}: {', '.join(seen)}")
    if "Workload" in df and df["Workload"].nunique() > 1:
        out.append("note: rows have different workloads (see the Workload column)")
    used = df.dropna(subset=["% of kernel"]) if "kernel_ref" in df else df.iloc[0:0]
    for ref, rows in used.groupby("kernel_ref", sort=False)["#"]:
        which = ("rows " if len(rows) > 1 else "row ") + ", ".join(str(n) for n in rows)
        out.append(f"note: % of kernel for {which} is relative to {ref}")
    return out


def row_warnings(row: pd.Series) -> list[str]:
    """The warnings about one row of :func:`grouped` (the HTML page shows them in the row)."""
    out = []
    if exceeds(row["gbps_runs"]):
        out.append(
            f"warning: {row['Variant']}: spread {100 * row['spread']:.0f}% of the "
            f"median over {row['n']} runs (> {100 * SPREAD_WARN:.0f}%)"
        )
    for err in row.get("errors") or []:
        out.append(f"failed: {row['Variant']}: {err}")
    shas = row.get("git_sha") or []
    if len(shas) > 1:
        out.append(
            f"warning: {row['Variant']}: its runs come from different code "
            f"({', '.join(shas)}); compare them with tunbench compare instead"
        )
    return out


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
            "Min": [_num(v, ".2f") for v in df["Min"]],
            "Max": [_num(v, ".2f") for v in df["Max"]],
            "n": [
                f"{n}" + (f" ({f} failed)" if f else "")
                for n, f in zip(df["n"], df["failed"], strict=True)
            ],
            "% of kernel": [_num(v, ".0f", "%") for v in df["% of kernel"]],
            "CPU/Gbps": [_num(v, ".1f", "%") for v in df["CPU/Gbps"]],
            "Bound by": [v or "-" for v in df["Bound by"]],
        }
    )
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


def _export(df: pd.DataFrame) -> pd.DataFrame:
    return df[[*COLUMNS, *EXPLAIN, "failed", "Workload"]]


def csv(records: Iterable[dict[str, Any]]) -> str:
    return str(_export(grouped(records)).to_csv(index=False))


def json_table(records: Iterable[dict[str, Any]]) -> str:
    return str(_export(grouped(records)).to_json(orient="records", indent=1))
