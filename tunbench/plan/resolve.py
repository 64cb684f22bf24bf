"""``matrix --resolve PCT``: plan the rounds a row needs for a ±PCT % 95 % interval.

Two stages (Stein's idea, as netperf's ``-I`` does by repeating): the first ``--repeat``
rounds estimate each row's run-to-run spread, then each row gets as many rounds as that
spread needs (:func:`tunbench.analysis.paired.rounds_for`), at most ``--max-repeat``.
The spread of a row paired with a reference row (``matrix --paired``, or a matrix of two
specs: every later spec against the first) is the standard deviation of its per-round
log ratios against that row, which is what its paired verdict's interval is made of; a
row without one (the reference itself, any row of an unpaired matrix) uses the standard
deviation of the logs of its own figures (about its coefficient of variation). The
reference row runs as many rounds as the most any row paired with it needs. A row whose
spread needs more than ``--max-repeat`` is ``capped``: the matrix says so, and its runs
after the first stage record the plan (``matrix.resolve``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tunbench.analysis import paired

MIN_SPREAD_ROUNDS = 2  # a spread needs two values


@dataclass(frozen=True)
class RowPlan:
    """One row's rounds under ``--resolve``."""

    spec: str
    against: str | None  # the reference row its spread is paired against, else None
    spread: float | None  # sd of the log ratios (or of its own logs); None: not estimable
    rounds_seen: int  # the rounds (or paired rounds) the spread is made of
    needed: int | None  # rounds that spread needs for ±pct; None without a spread
    planned: int  # rounds it gets: needed, at least --repeat, at most --max-repeat
    capped: bool  # needed more than --max-repeat
    pct: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def text(self) -> str:
        """One line for the matrix's output."""
        what = f"{self.spec}"
        if self.spread is None:
            return f"{what}: no spread from {self.rounds_seen} runs; {self.planned} rounds"
        basis = (
            f"log-ratio sd {100 * self.spread:.1f}% against {self.against}"
            if self.against
            else f"sd {100 * self.spread:.1f}%"
        )
        line = f"{what}: {basis} needs {self.needed} rounds for ±{self.pct:g}%"
        if self.capped:
            return line + f"; capped at {self.planned} by --max-repeat"
        return line + f"; {self.planned} rounds"


def spread(values: Sequence[float]) -> float | None:
    """The sd of the logs of positive ``values``; None with fewer than two."""
    logs = [math.log(v) for v in values if v > 0]
    return statistics.stdev(logs) if len(logs) >= MIN_SPREAD_ROUNDS else None


def paired_spread(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float | None, int]:
    """The sd of ln(b/a) over the rounds both have a figure for, and how many those are."""
    rounds = sorted(set(a) & set(b))
    d = paired.log_ratios([a[r] for r in rounds], [b[r] for r in rounds])
    return (statistics.stdev(d) if len(d) >= MIN_SPREAD_ROUNDS else None), len(d)


def plan(
    specs: Sequence[str],
    figures: Sequence[Mapping[int, float]],
    pct: float,
    repeat: int,
    max_repeat: int,
    reference: int | None = None,
) -> list[RowPlan]:
    """Each row's rounds from its first-stage figures (``figures[j]``: round -> figure
    of row ``j``); rows other than ``reference`` are paired with it when it is given."""
    target = math.log1p(pct / 100)

    def one(j: int, s: float | None, seen: int, against: str | None) -> RowPlan:
        if s is None:
            return RowPlan(specs[j], against, None, seen, None, repeat, False, pct)
        needed = paired.rounds_for(s, target, least=repeat)
        planned = min(needed, max(max_repeat, repeat))
        return RowPlan(specs[j], against, s, seen, needed, planned, needed > planned, pct)

    rows = []
    for j in range(len(specs)):
        if reference is not None and j != reference and specs[j] != specs[reference]:
            s, seen = paired_spread(figures[reference], figures[j])
            rows.append(one(j, s, seen, specs[reference]))
        else:
            rows.append(one(j, spread(list(figures[j].values())), len(figures[j]), None))
    if reference is not None:
        ref = rows[reference]
        most = max(r.planned for r in rows)
        if most > ref.planned:  # its pairs need its runs of those rounds too
            rows[reference] = RowPlan(
                ref.spec,
                None,
                ref.spread,
                ref.rounds_seen,
                ref.needed,
                most,
                ref.capped,
                pct,
            )
    return rows
