"""The warnings and notes under the summary table, from :func:`tunbench.report.tables.grouped`'s
rows: a wide spread or confidence interval, noisy, unsteady, unsampled or failed runs, runs
of different code, machines or matrix runs, and which kernel row ``% of kernel`` used.
The HTML page shows a row's own warnings inside the row (:func:`row_warnings`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import pandas as pd

from tunbench.analysis import primary

SPREAD_WARN = 0.10  # (max - min) / median above this gets a warning
CI_WARN = 0.05  # CI half-width above this share of the mean gets a warning


def spread(values: Sequence[float]) -> float:
    """Relative spread ``(max - min) / median``; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else math.inf


def exceeds(values: Sequence[float], tolerance: float = SPREAD_WARN) -> bool:
    """True when the spread is strictly above ``tolerance`` (0.10 = 10 %)."""
    return spread(values) > tolerance


def _count(n: int, total: int, what: str) -> str:
    return f"{n} of {total} runs {what}" if total != 1 else f"its run {what}"


def warnings(df: pd.DataFrame) -> list[str]:
    """Every row's :func:`row_warnings`, then what concerns the report as a whole: results
    that should not be read together (different machines or matrix runs), different
    workloads, and which kernel row ``% of kernel`` divides by."""
    out = [note for _, row in df.iterrows() for note in row_warnings(row)]
    by_host = "Host" in df and (df["Host"] != "").any()
    hosts = sorted({v for values in df.get("host", []) for v in values})
    if len(hosts) > 1 and not by_host:
        out.append(
            f"warning: rows merge results of different hosts: {', '.join(hosts)}; "
            "`tunbench report --by host` keeps them apart"
        )
    for col, what in (("kernel", "kernels"), ("cpu_model", "CPU models")):
        seen = sorted({v for values in df.get(col, []) for v in values})
        if len(seen) > 1 and not by_host:  # by host, the Host column says where each is from
            out.append(f"warning: results from different {what}: {', '.join(seen)}")
    # rows of different hosts are never merged (by host, "Host" tells them apart; else it
    # is "" throughout): only one host's matrix runs can be combined in its rows
    matrices: dict[str, set[str]] = {}
    for host, ids in zip(df.get("Host", [""] * len(df)), df.get("matrix_ids", []), strict=False):
        matrices.setdefault(str(host), set()).update(ids)
    for host, ids in sorted(matrices.items()):
        if len(ids) > 1:
            whose = f"{host}'s " if host else ""
            out.append(
                f"warning: {whose}rows combine {len(ids)} matrix runs ({', '.join(sorted(ids))}), "
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
    return out + cost_notes(df)


def _rows(nums: list[str]) -> str:
    return ("rows " if len(nums) > 1 else "row ") + ", ".join(nums)


def cost_notes(df: pd.DataFrame) -> list[str]:
    """What the cost rows ran at and how that rate was chosen, the diagnostic pass's
    limits, and the rows left unpinned."""
    out = []
    offered: dict[tuple[float, str], list[str]] = {}
    for _, row in df.iterrows():
        if pd.notna(row.get("offered_bps")):
            how = row.get("offered_how") or "given"
            offered.setdefault((float(row["offered_bps"]), str(how)), []).append(str(row["#"]))
    for (bps, how), nums in offered.items():
        out.append(
            f"note: {_rows(nums)} ran at an offered {bps / 1e9:.4g} Gbit/s ({how}): their "
            "figure is Gbit/s per core of forwarder CPU (schedstat), higher is better"
        )
    for note in sorted({str(n) for n in df.get("diagnose_note", []) if isinstance(n, str)}):
        out.append(f"note: diagnostic pass: {note}")
    unpinned = [
        str(r["#"]) for _, r in df.iterrows() if r.get("Placement") == "none (multi-thread)"
    ]
    if (
        unpinned
        and (df.get("Placement", pd.Series(dtype=object)).fillna("").str.startswith("split")).any()
    ):
        out.append(
            f"note: {_rows(unpinned)} ran unpinned (multi-thread): their % of kernel needs a "
            "kernel row in the same placement"
        )
    return out


def row_warnings(row: pd.Series) -> list[str]:
    """The warnings about one row of :func:`grouped` (the HTML page shows them in the row):
    wide spread or CI, noisy, unsteady or unsampled runs, failures, different code."""
    out = []
    name, n, total = row["Variant"], int(row["n"]), int(row["n"] + row["failed"])
    if row.get("Host"):
        name = f"{row['Host']}: {name}"
    wide = []
    if exceeds(row["primary_runs"]):
        wide.append(f"spread {100 * row['spread']:.0f}% of the median (> {100 * SPREAD_WARN:.0f}%)")
    target = row.get("until_ci")
    if target is not None and pd.isna(target):  # rows of a matrix without --until-ci beside
        target = None  # rows of one with it: pandas fills the column with NaN, which is true
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
    if row.get("short_cpu"):
        out.append(
            f"note: {name}: {_count(int(row['short_cpu']), n, 'had')} its forwarder below "
            f"{100 * primary.SHORT_OF_CPU:.0f}% of the row's median CPU (something else "
            "limited them): left out of its figure"
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
    if row.get("short"):
        out.append(
            f"warning: {name}: {_count(int(row['short']), n, 'carried')} less than "
            "97% of the offered load (lost or fell behind): not used for its cost"
        )
    if row.get("cpu_disagree"):
        out.append(
            f"note: {name}: schedstat and psutil CPU differ by more than 5% in "
            f"{int(row['cpu_disagree'])} of {n} runs (up to {row['cpu_check_max']:.0f}%): "
            "the cost uses schedstat"
        )
    if row.get("capacity_limited") is True:
        what = {"load": "the load generator", "machine": "the machine"}.get(
            str(row.get("capacity_bound")), str(row.get("capacity_bound"))
        )
        out.append(
            f"note: {name}: its capacity is bound by {what}, not the forwarder: "
            "a lower bound, not a verdict on its speed"
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
