"""The summary table's cost, placement and diagnostic columns, as
:func:`tunbench.report.tables.grouped` builds them.

Per run (:func:`run_columns`) and then per row (:data:`AGG`, :func:`finish`):

- ``Gbps/core``, ``µs/MB``, ``µs/pkt``: the forwarder's cost (:mod:`tunbench.analysis.cost`),
  medians over the runs that carried their offered load;
- ``runq %``: the share of its runnable time the forwarder waited on a run queue;
- ``sys/pkt``, ``cs/pkt``, ``migr/pkt`` (and ``instr/pkt``, ``cyc/pkt`` where the machine
  has hardware counters): the diagnostic pass's counts per packet;
- ``Placement``: where the row's processes ran (:mod:`tunbench.cell.placement`);
- ``capacity_bound``/``capacity_limited``: a capacity row more than half of whose runs
  ran out of load generator or machine first (the Gbps column then reads ``≥ 12.20,
  load-bound``);
- ``short``, ``cpu_disagree``: runs that carried less than their offered load, and runs
  whose schedstat and psutil CPU differ by more than 5 %, for the notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

# Table column <- record key, the median over a row's successful runs.
COST_MEDIANS = {
    "Gbps/core": "gbps_per_core",
    "µs/MB": "us_per_mb",
    "µs/pkt": "us_per_packet",
    "runq %": "runq_wait_share",
}
DIAG_MEDIANS = {
    "sys/pkt": "syscalls_per_packet",
    "cs/pkt": "cswitches_per_packet",
    "migr/pkt": "migrations_per_packet",
    "instr/pkt": "instructions_per_packet",
    "cyc/pkt": "cycles_per_packet",
}
MEDIANS = {**COST_MEDIANS, **DIAG_MEDIANS}
# what grouped() adds to its raw columns (the notes and pages read them)
COLUMNS = [
    "Placement",
    "short",
    "cpu_disagree",
    "cpu_check_max",
    "capacity_bound",
    "capacity_limited",
    "offered_bps",
    "offered_how",
    "diagnose_note",
]


def _capacity(values: pd.Series) -> Any:
    """A row's capacity bound: ``load`` or ``machine`` when more than half of its runs
    with one were bound so (the most common of the two), else ``forwarder``."""
    seen = [v for v in values if isinstance(v, str)]
    limited = [v for v in seen if v in ("load", "machine")]
    if not seen:
        return None
    if 2 * len(limited) > len(seen):
        return max(dict.fromkeys(limited), key=limited.count)
    return "forwarder"


def _most_common(values: pd.Series) -> Any:
    seen = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return max(dict.fromkeys(seen), key=seen.count) if seen else None


def _abs_max(values: pd.Series) -> float:
    present = [abs(v) for v in values.dropna()]
    return max(present) if present else math.nan


def run_columns(recs: Sequence[dict[str, Any]], ok: Sequence[bool]) -> dict[str, list[Any]]:
    """Per-run columns (beside :data:`MEDIANS`' keys, which tables measures itself)."""

    def good(key: str) -> list[Any]:
        return [r.get(key) if g else None for r, g in zip(recs, ok, strict=True)]

    return {
        "placement": [r.get("placement") or "" for r in recs],
        "offered_short": [bool(v) for v in good("offered_short")],
        "cpu_disagree": [bool(v) for v in good("cpu_disagree")],
        "cpu_check_pct": [math.nan if v is None else float(v) for v in good("cpu_check_pct")],
        "capacity_bound": good("capacity_bound"),
        "offered_bps": [
            math.nan if r.get("offered_bps") is None else float(r["offered_bps"]) for r in recs
        ],
        "offered_how": [(r.get("offered") or {}).get("how") for r in recs],
        "diagnose_note": [(r.get("diagnose") or {}).get("note") for r in recs],
    }


# what CSV/JSON exports carry of them (raw, SI units; runq % in percent)
EXPORT = [*MEDIANS, "Placement", "capacity_bound", "capacity_limited", "offered_bps", "short"]
AGG = {
    "Placement": ("placement", "first"),
    "short": ("offered_short", "sum"),
    "cpu_disagree": ("cpu_disagree", "sum"),
    "cpu_check_max": ("cpu_check_pct", _abs_max),
    "capacity_bound": ("capacity_bound", _capacity),
    "offered_bps": ("offered_bps", "first"),
    "offered_how": ("offered_how", _most_common),
    "diagnose_note": ("diagnose_note", _most_common),
}


def finish(df: pd.DataFrame) -> None:
    """Row columns made of the aggregates: ``capacity_limited`` (the row's most common
    capacity bound is the load generator or the machine)."""
    df["capacity_limited"] = [b in ("load", "machine") for b in df["capacity_bound"]]
    df["runq %"] = df["runq %"] * 100.0
