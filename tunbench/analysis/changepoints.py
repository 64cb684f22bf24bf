"""Change points in a series of runs ordered by revision: E-divisive means with a
permutation test, the method the performance-CI tools converged on.

A series is one number per run (a fresh forwarder and load pair), each run belonging to
a revision; runs are in revision order. :func:`detect` splits it where the distribution
of the runs changes:

- The divergence of a split into ``X | Y`` (``m`` and ``k`` runs) is the energy
  statistic of Székely and Rizzo with exponent 1, scaled as Matteson and James do::

      Q = m k / (m + k) * (2/(m k) sum|x - y| - 1/C(m,2) sum|x - x'| - 1/C(k,2) sum|y - y'|)

  It is computed for every allowed split at once from prefix sums of the pairwise
  distance matrix, so a series of a few hundred runs costs a few milliseconds.
- Splits are only allowed at revision boundaries (runs of one revision are never
  divided) and leave at least ``min_size`` runs on each side.
- The best split of a segment is kept when a permutation test says it is significant:
  the runs of the segment are shuffled ``permutations`` times and the best split of each
  shuffle is scored the same way; the p-value is ``(1 + shuffles at least as divergent)
  / (1 + permutations)``. The generator is seeded, so an answer is reproducible.
- Kept splits divide the series further (each segment is searched again) until no
  segment has a significant split: a hierarchical, divisive search.

Each change found is then described by :func:`describe`: the medians and means of the
segments either side, the change of the median in % and Welch's 95 % t-interval of the
difference of the means (in % of the mean before). Only numpy and scipy.stats are used.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tunbench.analysis.stats import LEVEL, welch_p

MIN_SIZE = 3  # runs on each side of a change at least
ALPHA = 0.01  # a split is kept when its permutation p-value is at most this
PERMUTATIONS = 999  # shuffles per test: p-values down to 0.001
SEED = 20261203  # the default seed of the permutation generator


@dataclass(frozen=True)
class Split:
    """A significant split: the runs from ``at`` on belong to the new segment."""

    at: int  # index of the first run after the change
    q: float  # its divergence
    p_value: float  # permutation p-value


def _prefix(x: np.ndarray) -> np.ndarray:
    """2-D prefix sums of the pairwise distances: ``P[i, j] = sum |x[:i] - x[:j]|``."""
    d = np.abs(x[:, None] - x[None, :])
    p = np.zeros((len(x) + 1, len(x) + 1))
    p[1:, 1:] = d.cumsum(0).cumsum(1)
    return p


def divergence(x: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """``Q`` of splitting ``x`` before each index of ``cuts`` (each cut leaves at least 2
    values on each side)."""
    n = len(x)
    p = _prefix(x)
    m = cuts.astype(float)
    k = n - m
    cross = p[cuts, n] - p[cuts, cuts]  # sum over X x Y (P's first row and column are 0)
    within_x = p[cuts, cuts]  # sum over X x X (both orders)
    within_y = p[n, n] - p[cuts, n] - p[n, cuts] + p[cuts, cuts]
    e = 2 * cross / (m * k) - within_x / (m * (m - 1)) - within_y / (k * (k - 1))
    return m * k / n * e  # type: ignore[no-any-return]


def allowed_cuts(groups: Sequence[int], start: int, end: int, min_size: int) -> np.ndarray:
    """Indices ``i`` in ``start < i < end`` where ``groups`` (each run's revision index)
    changes and at least ``min_size`` runs lie on either side within the segment."""
    cuts = [
        i
        for i in range(start + max(min_size, 2), end - max(min_size, 2) + 1)
        if groups[i] != groups[i - 1]
    ]
    return np.array(cuts, dtype=int)


def best_split(
    x: np.ndarray,
    groups: Sequence[int],
    start: int,
    end: int,
    rng: np.random.Generator,
    min_size: int = MIN_SIZE,
    permutations: int = PERMUTATIONS,
) -> Split | None:
    """The most divergent allowed split of ``x[start:end]`` and its permutation p-value;
    None when no split is allowed."""
    cuts = allowed_cuts(groups, start, end, min_size)
    if not len(cuts):
        return None
    seg = x[start:end]
    rel = cuts - start
    q = divergence(seg, rel)
    best = int(np.argmax(q))
    observed = float(q[best])
    exceed = 0
    shuffled = seg.copy()
    for _ in range(permutations):
        rng.shuffle(shuffled)
        if float(divergence(shuffled, rel).max()) >= observed * (1 - 1e-12):
            exceed += 1
    return Split(int(cuts[best]), observed, (1 + exceed) / (1 + permutations))


def detect(
    values: Sequence[float],
    groups: Sequence[int],
    *,
    min_size: int = MIN_SIZE,
    alpha: float = ALPHA,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> list[Split]:
    """The significant splits of a series, in order. ``values`` are per-run figures in
    revision order and ``groups`` each run's revision index (non-decreasing); splits fall
    only where the group changes. Deterministic for a given ``seed``."""
    x = np.asarray(values, dtype=float)
    if len(x) != len(groups):
        raise ValueError("values and groups differ in length")
    if any(b < a for a, b in itertools.pairwise(groups)):
        raise ValueError("runs are not in revision order")
    rng = np.random.default_rng(seed)
    found: list[Split] = []
    todo = [(0, len(x))]
    while todo:
        start, end = todo.pop()
        split = best_split(x, groups, start, end, rng, min_size, permutations)
        if split is None or split.p_value > alpha:
            continue
        found.append(split)
        todo += [(start, split.at), (split.at, end)]
    return sorted(found, key=lambda s: s.at)


@dataclass(frozen=True)
class Step:
    """How the runs changed across one split: the segments either side of it."""

    before_median: float
    after_median: float
    before_mean: float
    after_mean: float
    change_pct: float  # change of the median, % of the median before
    ci_low_pct: float  # Welch's t-interval of mean(after) - mean(before), % of mean(before)
    ci_high_pct: float
    welch_p: float
    n_before: int
    n_after: int


def welch_interval(
    before: Sequence[float], after: Sequence[float], level: float = LEVEL
) -> tuple[float, float]:
    """Welch's t-interval of ``mean(after) - mean(before)`` (Welch-Satterthwaite degrees
    of freedom); both ends equal the difference when neither side varies."""
    from scipy import stats as sps

    na, nb = len(before), len(after)
    diff = statistics.fmean(after) - statistics.fmean(before)
    va = statistics.variance(before) / na if na > 1 else 0.0
    vb = statistics.variance(after) / nb if nb > 1 else 0.0
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff
    dof = (va + vb) ** 2 / (
        (va**2 / (na - 1) if na > 1 else 0.0) + (vb**2 / (nb - 1) if nb > 1 else 0.0)
    )
    half = float(sps.t.ppf(0.5 + level / 2, dof)) * se
    return diff - half, diff + half


def describe(before: Sequence[float], after: Sequence[float]) -> Step:
    """The :class:`Step` from the runs ``before`` a change to those ``after`` it."""
    mb, ma = statistics.median(before), statistics.median(after)
    meanb, meana = statistics.fmean(before), statistics.fmean(after)
    low, high = welch_interval(before, after)
    scale = 100.0 / meanb if meanb else math.nan
    return Step(
        before_median=mb,
        after_median=ma,
        before_mean=meanb,
        after_mean=meana,
        change_pct=100.0 * (ma - mb) / mb if mb else math.nan,
        ci_low_pct=low * scale,
        ci_high_pct=high * scale,
        welch_p=welch_p(before, after) if min(len(before), len(after)) >= 2 else math.nan,
        n_before=len(before),
        n_after=len(after),
    )
