"""``--until-ci``'s arithmetic: what a run adds to its row's runs, whether a row's interval
is narrow enough, and after the matrix which rows converged and what the others would
need. The rounds themselves are :mod:`tunbench.plan.matrix`'s.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from tunbench.analysis import paired, primary, stats
from tunbench.plan import resolve as resolve_plan


def row_values(recs: list[dict[str, Any]]) -> list[float]:
    """What a row's runs so far add up to: one figure per successful run, the row's
    (:func:`tunbench.analysis.primary.row_metric`: its workload's primary figure, or the
    cost of a capacity row the load generator ran out of first)."""
    return primary.row_values(recs)


def by_round(made: list[tuple[int, dict[str, Any]]]) -> dict[int, float]:
    """The row's figure per round (``made``: round index and run), as --resolve pairs them."""
    recs = [rec for _, rec in made]
    metric, _ = primary.row_metric(recs)
    return {
        r: float(rec[metric.key])
        for (r, rec), short in zip(made, primary.short_of_cpu(recs), strict=True)
        if rec.get("status") == "ok" and not primary.missing(rec.get(metric.key)) and not short
    }


def converged(runs: list[float], until_ci: float) -> bool:
    """True once the 95 % CI half-width of the mean of ``runs`` (one primary figure per
    run) is at most ``until_ci`` % of it."""
    ci = stats.mean_ci(runs)
    return ci is not None and 100 * ci.rel_half <= until_ci


class Missed(NamedTuple):
    """A row that did not reach the target."""

    spec: str
    half: float | None  # its 95 % CI half-width in % of the mean (None: < 3 successful runs)
    runs: int  # successful runs
    needed: int | None  # runs its spread so far would need for the target (None: no spread)


def convergence(recs: list[dict[str, Any]], until_ci: float) -> tuple[list[str], list[Missed]]:
    """Rows (spec and workload) that met the CI target, and those that did not
    (:class:`Missed`). The capacity rounds of a paced matrix are left out: their number
    is --capacity-repeat, no target is aimed at there."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        if (r.get("matrix") or {}).get("phase") == "capacity":
            continue
        key = (str(r.get("spec") or r["variant"]), str(r.get("workload_key")))
        grouped.setdefault(key, []).append(r)
    met: list[str] = []
    missed: list[Missed] = []
    for (spec, _), row in grouped.items():
        runs = row_values(row)
        ci = stats.mean_ci(runs)
        if converged(runs, until_ci):
            met.append(spec)
        else:
            sd = resolve_plan.spread(runs)
            needed = None if sd is None else paired.rounds_for(sd, math.log1p(until_ci / 100))
            missed.append(Missed(spec, 100 * ci.rel_half if ci else None, len(runs), needed))
    return met, missed
