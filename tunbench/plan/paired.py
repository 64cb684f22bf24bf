"""A/B of two specs measured in the same matrix session: their rounds paired.

``tunbench compare --a SPEC --b SPEC DIR`` and the summary ``tunbench matrix A B`` prints
(and ``matrix --paired`` for every later spec against the first) match each of B's runs
with A's run of the same round: the same ``matrix.id``, ``matrix.phase`` and
``matrix.repeat``, and the same workload. The verdict is
:func:`tunbench.analysis.paired.paired_verdict` on the two figures of each round.

The figure is the row's primary one (:mod:`tunbench.analysis.primary`: Gbit/s per core at an
offered load, else Gbit/s, TPS, ...), except for a capacity row whose runs mostly ran
out of load generator or machine (``capacity_limited``): its Gbit/s says more about the
load than the forwarder, so it is judged on its cost, Gbit/s per core of forwarder CPU
(``gbps_per_core``), as a paced row is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tunbench.analysis import paired, primary, stats

Round = tuple[str, str, int]  # matrix id, phase, round index


@dataclass(frozen=True)
class PairedRow:
    """B against A on one workload."""

    a: str
    b: str
    workload: str
    workload_key: str
    metric: primary.Metric
    why: str  # why this figure: "primary", "load-bound capacity: judged on its cost"
    rounds: list[Round]
    a_values: list[float]
    b_values: list[float]
    verdict: paired.PairedVerdict
    margin_pct: float

    @property
    def sessions(self) -> list[str]:
        return sorted({r[0] for r in self.rounds})


def round_of(rec: Mapping[str, Any]) -> Round | None:
    """The round a flat record ran in, None for a run outside a matrix."""
    m = rec.get("matrix")
    if not isinstance(m, Mapping) or m.get("id") is None or m.get("repeat") is None:
        return None
    return str(m["id"]), str(m.get("phase") or ""), int(m["repeat"])


def figure_of(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]
) -> tuple[primary.Metric, str]:
    """The figure two sides are judged on, and why (see the module docstring)."""
    metric = primary.of_record((a or b)[0])
    if metric == primary.STREAM and (primary.limited(a) or primary.limited(b)):
        return primary.COST, primary.LOAD_BOUND
    return metric, "primary"


def _counted(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A side's runs without those :func:`tunbench.analysis.primary.short_of_cpu`: their
    round is left out of the pairing."""
    return [r for r, short in zip(recs, primary.short_of_cpu(recs), strict=True) if not short]


def _by_round(recs: Iterable[Mapping[str, Any]], key: str) -> dict[Round, float]:
    """Each round's figure ``key`` (a successful run's); a round with two runs of the same
    spec and workload is ambiguous and left out."""
    out: dict[Round, float] = {}
    seen: set[Round] = set()
    for r in recs:
        rnd = round_of(r)
        v = r.get(key)
        if rnd is None or r.get("status") != "ok" or v is None or primary.missing(v):
            continue
        if rnd in seen:
            out.pop(rnd, None)
            continue
        seen.add(rnd)
        out[rnd] = float(v)
    return out


def pair(
    recs: list[dict[str, Any]],
    spec_a: str,
    spec_b: str,
    margin_pct: float = 100 * stats.MIN_EFFECT,
) -> list[PairedRow]:
    """B against A per workload both ran, on the rounds both have a figure for."""
    side: dict[str, dict[str, list[dict[str, Any]]]] = {spec_a: {}, spec_b: {}}
    for r in recs:
        spec = str(r.get("spec") or r.get("variant"))
        if spec in side:
            side[spec].setdefault(str(r["workload_key"]), []).append(r)
    rows = []
    for wk, a_recs in side[spec_a].items():
        b_recs = side[spec_b].get(wk)
        if not b_recs:
            continue
        metric, why = figure_of(a_recs, b_recs)
        a_by = _by_round(_counted(a_recs), metric.key)
        b_by = _by_round(_counted(b_recs), metric.key)
        rounds = sorted(set(a_by) & set(b_by))
        av, bv = [a_by[k] for k in rounds], [b_by[k] for k in rounds]
        v = paired.paired_verdict(av, bv, margin_pct, metric.higher_is_better)
        rows.append(
            PairedRow(
                spec_a,
                spec_b,
                str(a_recs[0].get("workload") or "stream"),
                wk,
                metric,
                why,
                rounds,
                av,
                bv,
                v,
                margin_pct,
            )
        )
    return rows


def specs_of(recs: list[dict[str, Any]]) -> list[str]:
    """The specs of ``recs`` in matrix order (their cell index), else first appearance."""
    first: dict[str, tuple[int, int]] = {}
    for i, r in enumerate(recs):
        m = r.get("matrix") or {}
        cell = m.get("cell") if isinstance(m, Mapping) else None
        spec = str(r.get("spec") or r.get("variant"))
        key = (int(cell) if cell is not None else 10**9, i)
        first[spec] = min(first.get(spec, key), key)
    return sorted(first, key=lambda s: first[s])


def _pct(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{round(v, 1) + 0.0:+.1f}%"


def _p(v: float | None) -> str:
    if v is None:
        return "-"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def frame(rows: list[PairedRow]) -> pd.DataFrame:
    """The paired verdicts as a table of text cells (markdown and the report page)."""
    table = pd.DataFrame(
        {
            "A": [r.a for r in rows],
            "B": [r.b for r in rows],
            "Figure": [
                r.metric.label + ("" if r.why == "primary" else " (load-bound: cost)") for r in rows
            ],
            "Rounds": [str(r.verdict.n) for r in rows],
            "Change": [_pct(r.verdict.change_pct) for r in rows],
            "95% CI": [
                f"{_pct(r.verdict.low_pct)} .. {_pct(r.verdict.high_pct)}"
                if r.verdict.low_pct is not None
                else "-"
                for r in rows
            ],
            "Detectable": [
                f"±{r.verdict.detectable_pct:.1f}%" if r.verdict.detectable_pct else "-"
                for r in rows
            ],
            "p (paired)": [_p(r.verdict.p_value) for r in rows],
            "Verdict": [r.verdict.text for r in rows],
        }
    )
    if len({r.workload_key for r in rows}) > 1:
        table.insert(2, "Workload", [r.workload for r in rows])
    return table


def legend(rows: list[PairedRow]) -> str:
    """What the columns of :func:`frame` mean."""
    margin = rows[0].margin_pct if rows else 100 * stats.MIN_EFFECT
    return (
        "paired by round (same matrix session and round): Change is B's figure "
        "in % of A's, the mean of the per-round log ratios; 95% CI its t-interval; "
        "Detectable the smallest change these rounds find 80% of the time; `same within "
        f"±X%` needs the interval inside ±{margin:g}% (--min-effect)"
    )


def markdown(rows: list[PairedRow]) -> str:
    """The paired verdicts as a GitHub table, then what the columns mean."""
    text = str(frame(rows).to_markdown(index=False, tablefmt="github", disable_numparse=True))
    return text + "\n\n" + legend(rows)


def as_json(rows: list[PairedRow]) -> str:
    out = []
    for r in rows:
        v = r.verdict
        out.append(
            {
                "a": r.a,
                "b": r.b,
                "workload": r.workload,
                "metric": r.metric.key,
                "figure": r.why,
                "higher_is_better": r.metric.higher_is_better,
                "sessions": r.sessions,
                "rounds": v.n,
                "a_values": r.a_values,
                "b_values": r.b_values,
                "change_pct": v.change_pct,
                "ci_pct": [v.low_pct, v.high_pct] if v.low_pct is not None else None,
                "detectable_pct": v.detectable_pct,
                "p_value": v.p_value,
                "sd_log": v.sd_log,
                "verdict": v.verdict,
                "verdict_text": v.text,
                "same_within_pct": v.same_within_pct,
                "rounds_needed": v.rounds_needed,
                "margin_pct": r.margin_pct,
            }
        )
    return json.dumps(out, indent=1)
