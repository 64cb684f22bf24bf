"""The statistics helpers against hand-checked values, and the verdict rule's error rates."""

from __future__ import annotations

import math
import random
from math import comb

import pytest

from tunbench.analysis import stats


def t4_cdf(t: float) -> float:
    """Student's t CDF for 4 degrees of freedom, in closed form (no scipy)."""
    x = t / math.sqrt(4 + t * t)
    return 0.5 + 0.75 * x - 0.25 * x**3


def test_t_interval_by_hand() -> None:
    # [1, 2, 3]: mean 2, s 1, sem 1/sqrt(3); t(0.975, 2 df) = 4.302652729749462 (tables)
    ci = stats.mean_ci([1.0, 2.0, 3.0])
    assert ci is not None
    assert ci.mean == 2.0 and ci.n == 3
    assert ci.half == pytest.approx(4.302652729749462 / math.sqrt(3))
    assert (ci.low, ci.high) == pytest.approx((2 - ci.half, 2 + ci.half))
    assert ci.rel_half == pytest.approx(ci.half / 2)
    # five runs: t(0.975, 4) = 2.7764451051977934; scipy.stats.t.interval gives the same ends
    five = stats.mean_ci([9.8, 10.1, 10.0, 10.3, 9.9])
    assert five is not None
    assert (five.low, five.high) == pytest.approx((9.781161161190001, 10.258838838809998))


def test_t_interval_needs_three_runs_and_handles_no_spread() -> None:
    assert stats.mean_ci([]) is None
    assert stats.mean_ci([1.0, 2.0]) is None
    assert stats.mean_ci([1.0, 2.0], min_n=2) is not None
    same = stats.mean_ci([5.0, 5.0, 5.0])
    assert same is not None and same.half == 0.0 and same.rel_half == 0.0


def test_welch_by_hand() -> None:
    # equal n: t = -3 / sqrt(1/3 + 1/3), Welch df = 4 exactly
    t = -3 / math.sqrt(2 / 3)
    by_hand = 2 * t4_cdf(t)
    assert stats.welch_p([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.021311641128756713)
    # unequal n and variances: the Welch-Satterthwaite df is not an integer (scipy value)
    assert stats.welch_p([10.0, 11.0, 12.0, 13.0], [20.0, 22.0]) == pytest.approx(
        0.017830637862296658
    )
    # symmetric in its arguments
    assert stats.welch_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(by_hand)


def test_welch_without_variance() -> None:
    assert stats.welch_p([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]) == 1.0
    assert stats.welch_p([3.0, 3.0, 3.0], [4.0, 4.0, 4.0]) == 0.0
    # near-identical values must not turn scipy's precision warning into an error
    nearly = [100.00000001, 100.00000002, 100.00000001]
    assert 0.0 <= stats.welch_p(nearly, [100.00000002] * 3) <= 1.0


def test_mann_whitney_exact_by_counting() -> None:
    # 5 vs 5 without ties: C(10, 5) = 252 equally likely rankings under no change
    assert stats.mann_whitney_p([6.0, 7, 8, 9, 10], [1.0, 2, 3, 4, 5]) == pytest.approx(
        2 / comb(10, 5)
    )
    # U = 1: the two rankings with U <= 1, both tails
    assert stats.mann_whitney_p([1.0, 2, 3, 4, 6], [5.0, 7, 8, 9, 10]) == pytest.approx(
        4 / comb(10, 5)
    )


def test_cv() -> None:
    assert stats.cv([1.0]) == 0.0
    assert stats.cv([9.0, 11.0]) == pytest.approx(math.sqrt(2) / 10)
    assert stats.cv([0.0, 0.0]) == math.inf


def test_verdicts() -> None:
    old = [10.0, 10.1, 9.9, 10.05, 9.95]
    assert stats.compare_runs(old, [11.0, 11.1, 10.9, 11.05, 10.95]).verdict == stats.FASTER
    slow = stats.compare_runs(old, [8.8, 8.9, 8.7, 8.85, 8.75])
    assert slow.verdict == stats.SLOWER and slow.p_value is not None and slow.p_value < 0.05
    assert slow.mw_p_value == pytest.approx(2 / comb(10, 5))
    assert slow.change_pct == pytest.approx(-12.0)
    # significant, but 1 % is below the 3 % minimum effect
    tight = [10.0, 10.01, 9.99, 10.005, 9.995]
    small = stats.compare_runs(tight, [x * 1.01 for x in tight])
    assert small.p_value is not None and small.p_value < 0.05
    assert small.verdict == stats.NO_CHANGE
    assert stats.compare_runs(tight, [x * 1.01 for x in tight], min_effect=0.005).verdict == (
        stats.FASTER
    )
    # big but not significant: wild runs
    assert stats.compare_runs([5.0, 15.0, 10.0], [6.0, 18.0, 12.0]).verdict == stats.NO_CHANGE
    # fewer than 3 runs on a side: never a verdict, even for a large change
    few = stats.compare_runs([10.0, 10.1], [20.0, 20.1, 20.2])
    assert few.verdict == stats.TOO_FEW and few.p_value is None and few.change_pct is not None
    assert stats.compare_runs([], [1.0, 2.0, 3.0]).verdict == stats.FAILED


def test_mann_whitney_must_agree_from_five_runs() -> None:
    # one wild run on the new side: the means differ (Welch p < 0.05), the ranks overlap
    old = [10.0, 10.2, 10.4, 10.6, 10.8]
    new = [10.5, 10.7, 10.9, 11.1, 14.0]
    c = stats.compare_runs(old, new)
    assert c.mw_p_value is not None and c.mw_p_value > 0.05
    assert c.verdict == stats.NO_CHANGE


def simulated_rates(cv: float, shift: float, trials: int, n: int = 5) -> dict[str, float]:
    rng = random.Random(1234)
    counts = dict.fromkeys(stats.VERDICTS, 0)
    for _ in range(trials):
        old = [rng.gauss(10.0, 10.0 * cv) for _ in range(n)]
        new = [rng.gauss(10.0 * (1 + shift), 10.0 * cv) for _ in range(n)]
        counts[stats.compare_runs(old, new).verdict] += 1
    return {k: v / trials for k, v in counts.items()}


@pytest.mark.parametrize("cv", [0.01, 0.03, 0.15])
def test_a_a_false_alarms_stay_below_five_percent(cv: float) -> None:
    """No change at 5 + 5 runs: a verdict at most 5 % of the time whatever the noise, and
    practically never when the run-to-run noise is well below the 3 % minimum effect."""
    rates = simulated_rates(cv, 0.0, 1000)
    false_alarm = rates[stats.FASTER] + rates[stats.SLOWER]
    assert false_alarm <= 0.05
    if cv <= 0.01:
        assert false_alarm == 0.0


@pytest.mark.parametrize(("cv", "power"), [(0.01, 0.99), (0.03, 0.9)])
def test_a_b_twelve_percent_slower_is_found(cv: float, power: float) -> None:
    rates = simulated_rates(cv, -0.12, 500)
    assert rates[stats.SLOWER] >= power
    assert rates[stats.FASTER] == 0.0
