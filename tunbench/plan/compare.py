"""``tunbench compare OLD NEW``: what changed between two result sets, per row.

Rows are matched by spec and workload. A row is ``faster`` or ``slower`` only when a test
on its per-run primary figure (:mod:`tunbench.analysis.primary`: Gbit/s of a stream, TPS of rr,
conn/s of crr, the zero-loss packet rate) says so and the median moved by more than the
minimum effect (:func:`tunbench.analysis.stats.compare_runs`: Welch's t-test, Mann-Whitney U from 5
runs per side, 3 % by default); fewer than 3 runs on a side is ``too few runs``.
Differences in the machine or the tools between the two sets are warned about: a verdict
across them may be about the machine, not the code. Comparing hosts (two hosts' result
directories, or ``--hosts A,B`` on a fleet directory) is exactly that, so each row also
gets its ``% of kernel`` on both sides and the ratio of the two hosts' kernel ceilings (the
row's kernel reference row, NEW over OLD): a row that changed as much as the ceiling did
ran faster because the host is faster; a change in ``% of kernel`` is the forwarder's own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tunbench.analysis import primary, results, stats
from tunbench.errors import ResultFileError
from tunbench.report import tables

# metadata keys that must match for a comparison to be about the code alone
MACHINE_KEYS = {
    "kernel": "kernel",
    "cpu_model": "CPU model",
    "hostname": "host",
    "iperf3_version": "iperf3 version",
    "python": "Python version",
}
JSON_KEYS = (
    "variant",
    "workload",
    "metric",
    "unit",
    "old",
    "new",
    "old_gbps",
    "new_gbps",
    "change_pct",
    "p_value",
    "mw_p_value",
    "n_old",
    "n_new",
    "old_ci",
    "new_ci",
    "old_cpu",
    "new_cpu",
    "verdict",
    "old_kernel_pct",
    "new_kernel_pct",
    "kernel_ref",
    "kernel_ratio",
)


def _load(
    directory: Path, on_skip: Callable[[list[Path]], None] | None = None
) -> list[dict[str, Any]]:
    docs = results.load_dir(directory, on_skip)
    if not docs:
        raise ResultFileError(f"no result files in {directory}")
    return docs


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _ci(row: pd.Series, side: str) -> list[float] | None:
    low, high = row[f"primary_ci_low {side}"], row[f"primary_ci_high {side}"]
    return None if pd.isna(low) else [float(low), float(high)]


def compare_docs(
    old_docs: list[dict[str, Any]],
    new_docs: list[dict[str, Any]],
    min_effect: float = stats.MIN_EFFECT,
) -> pd.DataFrame:
    """One row per (spec, workload) in either set, with the verdict and what it rests on
    (the columns of ``JSON_KEYS``): ``metric`` names the row's primary figure, ``old`` and
    ``new`` are its medians (raw, in ``unit``), ``old_ci``/``new_ci`` the intervals of its
    means; ``old_gbps``/``new_gbps`` repeat the medians for stream rows (None otherwise)."""
    old = tables.grouped(results.flat(d) for d in old_docs)
    new = tables.grouped(results.flat(d) for d in new_docs)
    key = ["Variant", "workload_key"]
    both = old.merge(new, on=key, how="outer", suffixes=(" old", " new"), indicator=True)
    # OLD's row order (its matrix's spec order), then rows only NEW has (an outer merge
    # sorts its keys)
    order = {k: i for i, k in enumerate(zip(old["Variant"], old["workload_key"], strict=True))}
    for k in zip(new["Variant"], new["workload_key"], strict=True):
        order.setdefault(k, len(order))
    both["_pos"] = [order[k] for k in zip(both["Variant"], both["workload_key"], strict=True)]
    both = both.sort_values("_pos", kind="stable")
    rows = []
    for _, r in both.iterrows():
        first = "new" if r["_merge"] == "right_only" else "old"
        m = primary.of_key(str(r[f"primary_metric {first}"]))
        row: dict[str, Any] = dict.fromkeys(JSON_KEYS)
        row.update({"variant": r["Variant"], "workload": r[f"Workload {first}"], "metric": m.key})
        row["unit"] = m.unit
        sides = ("old", "new") if r["_merge"] == "both" else (first,)
        for side in sides:
            row[side] = _nan_to_none(r[f"primary_median {side}"])
            if m == primary.STREAM:
                row[f"{side}_gbps"] = row[side]
        if r["_merge"] != "both":
            row["verdict"] = stats.ADDED if r["_merge"] == "right_only" else stats.REMOVED
            rows.append(row)
            continue
        ref = r["kernel_ref old"] or r["kernel_ref new"]
        row["kernel_ref"] = ref
        row["kernel_ratio"] = _kernel_ratio(old, new, str(ref), r["workload_key"]) if ref else None
        row["old_kernel_pct"] = _nan_to_none(r["% of kernel old"])
        row["new_kernel_pct"] = _nan_to_none(r["% of kernel new"])
        c = stats.compare_runs(r["primary_runs old"], r["primary_runs new"], min_effect)
        row.update(
            {
                "change_pct": c.change_pct,
                "p_value": c.p_value,
                "mw_p_value": c.mw_p_value,
                "n_old": c.n_old,
                "n_new": c.n_new,
                "old_ci": _ci(r, "old"),
                "new_ci": _ci(r, "new"),
                "old_cpu": _nan_to_none(r["CPU Avg old"]),
                "new_cpu": _nan_to_none(r["CPU Avg new"]),
                "verdict": primary.verdict_word(m, c.verdict, stats.FASTER, stats.SLOWER),
            }
        )
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(JSON_KEYS), dtype=object)
    out.attrs["across_hosts"] = across_hosts(old_docs, new_docs)  # markdown()'s default
    return out


def _kernel_ratio(old: pd.DataFrame, new: pd.DataFrame, ref: str, wk: str) -> float | None:
    """NEW's median of the kernel row ``ref`` (same workload) over OLD's: how much faster
    the other host's kernel forwards."""

    def median(df: pd.DataFrame) -> float | None:
        hit = df[(df["Variant"] == ref) & (df["workload_key"] == wk)]["primary_median"]
        return float(hit.iloc[0]) if len(hit) and pd.notna(hit.iloc[0]) else None

    a, b = median(old), median(new)
    return b / a if a and b is not None else None


def split_hosts(
    directory: Path, hosts: tuple[str, str], on_skip: Callable[[list[Path]], None] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The result files of two hosts (by :func:`tunbench.analysis.results.host_name`) in one
    directory, e.g. a fleet run's."""
    docs = _load(directory, on_skip)
    sides = [[d for d in docs if results.host_name(d) == h] for h in hosts]
    present = sorted({results.host_name(d) for d in docs})
    for host, side in zip(hosts, sides, strict=True):
        if not side:
            raise ResultFileError(
                f"no result files of host {host!r} in {directory} (hosts: {', '.join(present)})"
            )
    return sides[0], sides[1]


def machine_warnings(old_docs: list[dict[str, Any]], new_docs: list[dict[str, Any]]) -> list[str]:
    """What differs between the machines and tools of the two sets, and noisy runs."""
    out = []
    for key, what in MACHINE_KEYS.items():
        a = sorted({str(d["metadata"].get(key)) for d in old_docs})
        b = sorted({str(d["metadata"].get(key)) for d in new_docs})
        if a != b:
            out.append(
                f"warning: OLD and NEW differ in {what}: {', '.join(a)} -> {', '.join(b)}; "
                "a verdict may be about that, not the code"
            )
    for name, docs in (("OLD", old_docs), ("NEW", new_docs)):
        noisy = sum(1 for d in docs if d.get("results", {}).get("noisy"))
        if noisy:
            out.append(f"warning: {noisy} of {len(docs)} runs in {name} started on a busy machine")
    return out


def compare(
    old_dir: Path,
    new_dir: Path | None,
    min_effect: float = stats.MIN_EFFECT,
    on_skip: Callable[[list[Path]], None] | None = None,
    hosts: tuple[str, str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Compare the result files of two directories (or of two ``hosts`` in ``old_dir``):
    the rows and the warnings. Files that are not tunbench results go to ``on_skip`` (see
    :func:`tunbench.analysis.results.load_dir`)."""
    if hosts is not None:
        old_docs, new_docs = split_hosts(old_dir, hosts, on_skip)
    else:
        assert new_dir is not None
        old_docs, new_docs = _load(old_dir, on_skip), _load(new_dir, on_skip)
    return compare_docs(old_docs, new_docs, min_effect), machine_warnings(old_docs, new_docs)


def across_hosts(old_docs: list[dict[str, Any]], new_docs: list[dict[str, Any]]) -> bool:
    """Whether the two sets come from different hosts (then the table shows the kernel
    ceilings' ratio beside each row)."""
    names = [{results.host_name(d) for d in docs} for docs in (old_docs, new_docs)]
    return names[0] != names[1]


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _p(value: Any) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _figures(df: pd.DataFrame) -> tuple[str, list[str], list[str]]:
    """The old and new columns: their header prefix and cells. Rows of one primary figure:
    ``TPS old`` and bare numbers; rows of several: each cell with its unit."""
    metrics = [primary.of_key(str(k)) for k in df["metric"]]
    one = len(set(metrics)) == 1
    cells = [
        [m.number(v, unit=not one) for m, v in zip(metrics, df[side], strict=True)]
        for side in ("old", "new")
    ]
    return (f"{metrics[0].label} " if one else ""), cells[0], cells[1]


def markdown(df: pd.DataFrame, notes: list[str] | None = None, hosts: bool | None = None) -> str:
    """The comparison as a GitHub table, then the warnings. ``hosts`` (default: whether
    :func:`compare_docs` found two hosts): each row also shows its ``% of kernel`` on both
    sides and the kernel ceilings' ratio."""
    if hosts is None:
        hosts = bool(df.attrs.get("across_hosts"))
    prefix, old, new = _figures(df) if len(df) else ("Gbps ", [], [])
    table = pd.DataFrame(
        {
            "Variant": df["variant"],
            f"{prefix}old": old,
            f"{prefix}new": new,
            "Change": [
                _fmt(round(v, 1) + 0.0, "+.1f") + "%" if v is not None else "-"
                for v in df["change_pct"]
            ],
            "p (Welch)": [_p(v) for v in df["p_value"]],
            "n": [
                f"{a}/{b}" if a is not None else "-"
                for a, b in zip(df["n_old"], df["n_new"], strict=True)
            ],
            "CPU old": [_fmt(v, ".0f") for v in df["old_cpu"]],
            "CPU new": [_fmt(v, ".0f") for v in df["new_cpu"]],
            "Verdict": df["verdict"],
        }
    )
    if hosts:
        at = list(table.columns).index("Verdict")
        for i, (name, col) in enumerate(
            (("% kernel old", "old_kernel_pct"), ("% kernel new", "new_kernel_pct"))
        ):
            table.insert(at + i, name, [_fmt(v, ".0f") for v in df[col]])
        table["Kernel new/old"] = [
            _fmt(v, ".2f") + "x" if v is not None else "-" for v in df["kernel_ratio"]
        ]
    if df["workload"].nunique() > 1:
        table.insert(1, "Workload", df["workload"])
    text = str(table.to_markdown(index=False, tablefmt="github", disable_numparse=True))
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def as_json(df: pd.DataFrame) -> str:
    rows = [{k: _nan_to_none(v) for k, v in row.items()} for row in df.to_dict("records")]
    return json.dumps(rows, indent=1)
