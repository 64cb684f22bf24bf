"""``tunbench compare OLD NEW``: what changed between two result sets, per row.

A change is marked significant only when both sides have at least two runs and their
[min, max] ranges do not overlap; with a single run on either side there is no range to
judge, and the row says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tunbench import report, results
from tunbench.errors import ResultFileError


def _load(directory: Path, on_skip: Callable[[list[Path]], None] | None) -> pd.DataFrame:
    docs = results.load_dir(directory, on_skip)
    if not docs:
        raise ResultFileError(f"no result files in {directory}")
    return report.grouped(results.flat(d) for d in docs)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when the closed ranges ``a`` and ``b`` share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


def compare(
    old_dir: Path, new_dir: Path, on_skip: Callable[[list[Path]], None] | None = None
) -> pd.DataFrame:
    """One row per (variant, workload) in either set, with the changes; files that are not
    tunbench results go to ``on_skip`` (see :func:`tunbench.results.load_dir`)."""
    old, new = _load(old_dir, on_skip), _load(new_dir, on_skip)
    key = ["Variant", "workload_key"]
    both = old.merge(new, on=key, how="outer", suffixes=(" old", " new"), indicator=True)
    rows = []
    for _, r in both.iterrows():
        if r["_merge"] != "both":
            rows.append(
                {
                    "Variant": r["Variant"],
                    "Change": "added" if r["_merge"] == "right_only" else "removed",
                }
            )
            continue
        go, gn = r["Gbps old"], r["Gbps new"]
        row = {"Variant": r["Variant"], "Gbps old": go, "Gbps new": gn}
        if pd.notna(go) and pd.notna(gn) and go:
            few = min(r["n old"], r["n new"]) < 2
            sig = not few and not overlap(
                (r["Min old"], r["Max old"]), (r["Min new"], r["Max new"])
            )
            row.update(
                {
                    "Δ Gbps": gn - go,
                    "Δ %": 100.0 * (gn - go) / go,
                    "CPU old": r["CPU Avg old"],
                    "CPU new": r["CPU Avg new"],
                    "Δ CPU": (r["CPU Avg new"] - r["CPU Avg old"])
                    if pd.notna(r["CPU Avg old"]) and pd.notna(r["CPU Avg new"])
                    else None,
                    "Change": "significant" if sig else "too few runs" if few else "within noise",
                }
            )
        else:
            row["Change"] = "failed run"
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    cols = [
        "Variant",
        "Gbps old",
        "Gbps new",
        "Δ Gbps",
        "Δ %",
        "CPU old",
        "CPU new",
        "Δ CPU",
        "Change",
    ]
    df = df.reindex(columns=cols).astype(object)
    df = df.where(df.notna(), None)
    return str(df.to_markdown(index=False, tablefmt="github", floatfmt=".2f", missingval="-"))
