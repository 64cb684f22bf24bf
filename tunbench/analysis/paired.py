"""Paired verdicts: two specs measured round by round in one matrix session.

When A and B ran in the same rounds of one matrix (same ``matrix.id``, ``phase`` and
``repeat``), what drifts over the session (the machine's other load, its clock, the
neighbours on a shared host) hits both runs of a round alike. The per-round log ratio
``d_i = ln(B_i / A_i)`` of their primary figure cancels it; the verdict rests on the
d_i alone (a one-sample Student t on them, i.e. scipy's ``ttest_rel`` on the logs):

- the change is ``exp(mean d) - 1``, its 95 % interval ``exp(mean d ± t(0.975, n-1)·s/√n) - 1``;
- the smallest change this data could have detected (80 % power, two-sided 5 %) is
  ``exp((t(0.975, n-1) + t(0.80, n-1))·s/√n) - 1``;
- the verdict is ``faster``/``slower`` when the interval excludes 0 (by the figure's
  direction: for a figure where lower is better, a rise is ``slower``), ``same within
  ±X %`` when it excludes every change larger than the margin (X: the larger bound in
  absolute value, rounded up to a whole %), else ``inconclusive``, with the rounds that
  would decide at this spread (:func:`rounds_to_decide`).

:func:`rounds_for` is ``matrix --resolve``'s arithmetic: how many rounds a spread needs
for a ±PCT 95 % interval. Unpaired sets keep Welch and Mann-Whitney
(:func:`tunbench.analysis.stats.compare_runs`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tunbench.analysis.stats import _sps

LEVEL = 0.95
POWER = 0.80  # of the smallest detectable change
MIN_PAIRS = 3  # fewer paired rounds: no interval, no verdict
MAX_ROUNDS = 10_000  # "would decide" beyond this many rounds is "never", in practice

SAME = "same"
INCONCLUSIVE = "inconclusive"
TOO_FEW = "too few rounds"


def _t(q: float, df: int) -> float:
    return float(_sps().t.ppf(q, df))


def pct(log_ratio: float) -> float:
    """A log ratio as a % change: ln(1.05) -> 5.0."""
    return 100.0 * math.expm1(log_ratio)


def half_width(s: float, n: int, level: float = LEVEL) -> float:
    """The t-interval's half-width, in logs, for ``n`` values of sample sd ``s``."""
    return _t(0.5 + level / 2, n - 1) * s / math.sqrt(n)


def detectable(s: float, n: int, level: float = LEVEL, power: float = POWER) -> float:
    """The smallest true change (in logs) that ``n`` rounds of spread ``s`` find with
    probability ``power`` at a two-sided ``level``: (t(0.975, n-1) + t(0.80, n-1))·s/√n."""
    return (_t(0.5 + level / 2, n - 1) + _t(power, n - 1)) * s / math.sqrt(n)


def rounds_for(s: float, target: float, level: float = LEVEL, least: int = 2) -> int:
    """The fewest rounds (at least ``least``, at least 2) whose interval half-width at
    spread ``s`` (sd of the per-round log values) is at most ``target`` (in logs:
    ``math.log1p(PCT / 100)``); :data:`MAX_ROUNDS` when even that many do not do it."""
    if target <= 0:
        return MAX_ROUNDS
    n = max(2, least)
    if s <= 0:
        return n
    # the normal approximation is a lower bound (t > z); start there and walk up
    z = float(_sps().norm.ppf(0.5 + level / 2))
    n = max(n, math.ceil((z * s / target) ** 2))
    while n < MAX_ROUNDS and half_width(s, n, level) > target:
        n += 1
    return min(n, MAX_ROUNDS)


def rounds_to_decide(mean: float, s: float, margin: float, level: float = LEVEL) -> int | None:
    """Rounds after which, were the mean ``mean`` and spread ``s`` (logs) to stay, the
    interval would either exclude 0 (a change) or fit within ±``margin`` (the same): the
    fewer of the two; None when neither ever would (a mean at exactly 0 with no margin)."""
    options = []
    if mean != 0:
        options.append(rounds_for(s, abs(mean), level))
    if margin > abs(mean):
        options.append(rounds_for(s, margin - abs(mean), level))
    best = min(options, default=MAX_ROUNDS)
    return None if best >= MAX_ROUNDS else best


@dataclass(frozen=True)
class PairedVerdict:
    """B against A over ``n`` paired rounds: the change of B's figure in % of A's, its
    interval and the verdict (see the module docstring)."""

    verdict: str  # faster | slower | same | inconclusive | too few rounds
    n: int
    change_pct: float | None
    low_pct: float | None
    high_pct: float | None
    detectable_pct: float | None  # smallest change the data could have detected (80 %)
    same_within_pct: float | None  # X of "same within ±X %"
    rounds_needed: int | None  # inconclusive: the rounds that would decide
    p_value: float | None  # of the paired t-test
    sd_log: float | None  # spread of the log ratios

    @property
    def text(self) -> str:
        """The verdict in words: ``slower``, ``same within ±2 %``, ``inconclusive (about
        14 rounds would decide)``."""
        if self.verdict == SAME:
            return f"same within ±{self.same_within_pct:g}%"
        if self.verdict == INCONCLUSIVE:
            if self.rounds_needed is None:
                return "inconclusive"
            return f"inconclusive (about {self.rounds_needed} rounds would decide)"
        return self.verdict


def log_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """ln(b_i / a_i) of the rounds where both figures are positive."""
    return [math.log(y / x) for x, y in zip(a, b, strict=True) if x > 0 and y > 0]


def paired_verdict(
    a: Sequence[float],
    b: Sequence[float],
    margin_pct: float = 3.0,
    higher_is_better: bool = True,
    level: float = LEVEL,
    up: str = "faster",
    down: str = "slower",
) -> PairedVerdict:
    """The verdict on B against A from their figures of the same rounds (``a[i]`` and
    ``b[i]`` ran in round i). ``margin_pct``: the largest change still called the same."""
    d = log_ratios(a, b)
    n = len(d)
    if n < MIN_PAIRS:
        change = pct(statistics.fmean(d)) if d else None
        return PairedVerdict(TOO_FEW, n, change, None, None, None, None, None, None, None)
    mean, s = statistics.fmean(d), statistics.stdev(d)
    h = half_width(s, n, level)
    low, high = pct(mean - h), pct(mean + h)
    if s > 0:
        p = 2 * float(_sps().t.sf(abs(mean) / (s / math.sqrt(n)), n - 1))
    else:
        p = 1.0 if mean == 0 else 0.0
    margin = math.log1p(margin_pct / 100) if margin_pct > 0 else 0.0
    within, needed = None, None
    if low > 0 or high < 0:
        better = (high < 0) != higher_is_better
        verdict = up if better else down
    elif margin_pct > 0 and max(-low, high) <= margin_pct:
        verdict = SAME
        within = float(max(1, math.ceil(max(-low, high) - 1e-9)))
    else:
        verdict = INCONCLUSIVE
        needed = rounds_to_decide(mean, s, margin, level)
    return PairedVerdict(
        verdict,
        n,
        pct(mean),
        low,
        high,
        pct(detectable(s, n, level)),
        within,
        needed,
        p,
        s,
    )
