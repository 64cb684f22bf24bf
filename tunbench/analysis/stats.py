"""The statistics behind the table and ``compare``: confidence intervals and verdicts.

Everything here works on per-run values (one number per fresh forwarder + iperf3 pair)
and uses scipy.stats for the distributions; nothing is read off ranges by eye.

- :func:`mean_ci`: the 95 % t-interval on the mean of a row's runs. With the 3-8 runs a
  matrix gives, an order-statistic interval for the median does not exist at 95 % below
  6 runs (min..max of 5 runs covers the median only 94 % of the time) and a bootstrap
  interval covers far less than it claims, so the centre a CI is given for is the mean.
- :func:`compare_runs`: Welch's t-test (unequal variances, unequal n), cross-checked by
  Mann-Whitney U when both sides have at least 5 runs, and a minimum change of the median
  (pyperf's rule): a verdict needs a significant test AND an effect worth reporting.
- :func:`cv`: coefficient of variation, for the steady-state flag of a run's intervals.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LEVEL = 0.95  # confidence level of intervals and tests
MIN_RUNS = 3  # fewer runs on a side: no interval, no verdict
MW_MIN_RUNS = 5  # Mann-Whitney U cross-checks from this many runs per side
MIN_EFFECT = 0.03  # a verdict needs the median to move by more than this (3 %)

FASTER = "faster"
SLOWER = "slower"
NO_CHANGE = "no significant change"
TOO_FEW = "too few runs"
ADDED = "added"
REMOVED = "removed"
FAILED = "failed"
VERDICTS = (FASTER, SLOWER, NO_CHANGE, TOO_FEW, ADDED, REMOVED, FAILED)


def _sps() -> Any:
    """scipy.stats, imported on first use (it takes most of a second to load)."""
    from scipy import stats as sps

    return sps


@dataclass(frozen=True)
class Interval:
    """A confidence interval for the mean of ``n`` values."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half(self) -> float:
        return (self.high - self.low) / 2

    @property
    def rel_half(self) -> float:
        """Half-width relative to the mean (0.03 = +-3 %); inf when the mean is 0."""
        return self.half / abs(self.mean) if self.mean else math.inf


def mean_ci(
    values: Sequence[float], level: float = LEVEL, min_n: int = MIN_RUNS
) -> Interval | None:
    """Student's t-interval on the mean; None with fewer than ``min_n`` values."""
    n = len(values)
    if n < max(2, min_n):
        return None
    mean = statistics.fmean(values)
    sem = statistics.stdev(values) / math.sqrt(n)
    half = float(_sps().t.ppf(0.5 + level / 2, n - 1)) * sem
    return Interval(mean, mean - half, mean + half, n)


def cv(values: Sequence[float]) -> float:
    """Sample standard deviation over the mean; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / abs(mean) if mean else math.inf


def welch_p(old: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (no equal-variance assumption).

    Two sides without any variance are equal (p = 1) or certainly different (p = 0);
    scipy would return nan for the first.
    """
    if statistics.pvariance(old) == 0 and statistics.pvariance(new) == 0:
        return 1.0 if statistics.fmean(old) == statistics.fmean(new) else 0.0
    with warnings.catch_warnings():  # near-identical runs: "precision loss" is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(_sps().ttest_ind(new, old, equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


def mann_whitney_p(old: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (exact for small samples without ties)."""
    return float(_sps().mannwhitneyu(new, old, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class Comparison:
    """The verdict on one row of ``compare`` and what it rests on."""

    verdict: str
    change_pct: float | None  # change of the median, % of the old median
    p_value: float | None  # Welch
    mw_p_value: float | None  # Mann-Whitney U, only with >= MW_MIN_RUNS runs per side
    n_old: int
    n_new: int


def compare_runs(
    old: Sequence[float],
    new: Sequence[float],
    min_effect: float = MIN_EFFECT,
    level: float = LEVEL,
) -> Comparison:
    """faster / slower / no significant change / too few runs for two sets of runs.

    faster or slower needs all of: at least ``MIN_RUNS`` runs on each side; Welch's p below
    ``1 - level``; with ``MW_MIN_RUNS`` or more runs per side, Mann-Whitney's p below it
    too; the median moved by more than ``min_effect`` (relative); and the mean moved the
    same way as the median.
    """
    n_old, n_new = len(old), len(new)
    if n_old == 0 or n_new == 0:
        return Comparison(FAILED, None, None, None, n_old, n_new)
    m_old, m_new = statistics.median(old), statistics.median(new)
    change = 100.0 * (m_new - m_old) / m_old if m_old else None
    if min(n_old, n_new) < MIN_RUNS:
        return Comparison(TOO_FEW, change, None, None, n_old, n_new)
    alpha = 1 - level
    p = welch_p(old, new)
    mw = mann_whitney_p(old, new) if min(n_old, n_new) >= MW_MIN_RUNS else None
    significant = p < alpha and (mw is None or mw < alpha)
    same_way = (statistics.fmean(new) - statistics.fmean(old)) * (m_new - m_old) > 0
    big = change is not None and abs(change) > 100.0 * min_effect
    if significant and big and same_way and change is not None:
        verdict = FASTER if change > 0 else SLOWER
    else:
        verdict = NO_CHANGE
    return Comparison(verdict, change, p, mw, n_old, n_new)
