"""Paired verdicts (tunbench/analysis/paired.py) against scipy and hand-worked values."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as sps

from tunbench.analysis import paired
from tunbench.analysis.paired import paired_verdict, rounds_for, rounds_to_decide

A = [10.0, 12.0, 9.0, 11.0, 10.5]
B = [10.6, 12.5, 9.5, 11.7, 11.0]  # ~5 % up in every round, while A wanders by 30 %


def test_interval_and_p_value_match_scipy_on_the_logs() -> None:
    v = paired_verdict(A, B)
    la, lb = [math.log(x) for x in A], [math.log(y) for y in B]
    ref = sps.ttest_rel(lb, la)
    assert v.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)
    d = [y - x for x, y in zip(la, lb, strict=True)]
    n, mean, s = len(d), sum(d) / len(d), float(sps.tstd(d))
    half = float(sps.t.ppf(0.975, n - 1)) * s / math.sqrt(n)
    assert v.change_pct == pytest.approx(100 * math.expm1(mean))
    assert v.low_pct == pytest.approx(100 * math.expm1(mean - half))
    assert v.high_pct == pytest.approx(100 * math.expm1(mean + half))
    power = (float(sps.t.ppf(0.975, n - 1)) + float(sps.t.ppf(0.8, n - 1))) * s / math.sqrt(n)
    assert v.detectable_pct == pytest.approx(100 * math.expm1(power))
    assert v.sd_log == pytest.approx(s)
    assert v.n == 5 and v.verdict == "faster"  # higher is better: a rise is faster
    # the same figures as two independent sets: A's spread hides the change from Welch
    assert float(sps.ttest_ind(B, A, equal_var=False).pvalue) > 0.3


def test_hand_worked_example() -> None:
    # d = ln 1.05, ln 1.04, ln 1.06: mean 0.0487599, s 0.0095241, t(0.975, 2) = 4.302653,
    # half-width 4.302653 * 0.0095241 / sqrt(3) = 0.0236590
    v = paired_verdict([100, 100, 100], [105, 104, 106])
    assert v.change_pct == pytest.approx(4.9968, abs=1e-3)  # exp(0.0487599) - 1
    assert v.low_pct == pytest.approx(2.5418, abs=1e-3)  # exp(0.0251009) - 1
    assert v.high_pct == pytest.approx(7.5106, abs=1e-3)  # exp(0.0724189) - 1
    assert v.verdict == "faster"


def test_direction_follows_the_figure() -> None:
    # a figure where lower is better (a cost): a rise is slower
    assert paired_verdict(A, B, higher_is_better=False).verdict == "slower"
    assert paired_verdict(B, A).verdict == "slower"
    assert paired_verdict(B, A, higher_is_better=False).verdict == "faster"


def test_same_within_the_margin() -> None:
    a = [10.0, 12.0, 9.0, 11.0, 10.5, 9.8]
    b = [x * f for x, f in zip(a, [1.004, 0.997, 1.002, 0.998, 1.001, 0.999], strict=True)]
    v = paired_verdict(a, b, margin_pct=3)
    assert v.verdict == "same"
    assert max(-v.low_pct, v.high_pct) < 1  # the interval is about ±0.4 %
    assert v.same_within_pct == 1 and v.text == "same within ±1%"
    # rounded up, never down: a 1.2 % bound is "within ±2 %"
    c = [x * f for x, f in zip(a, [1.01, 0.99, 1.012, 0.988, 1.0, 1.0], strict=True)]
    w = paired_verdict(a, c, margin_pct=3)
    assert w.verdict == "same" and 1 < max(-w.low_pct, w.high_pct) <= 2
    assert w.same_within_pct == 2
    # the same data with a tighter margin cannot say "same"
    assert paired_verdict(a, c, margin_pct=1).verdict == "inconclusive"


def test_inconclusive_says_how_many_rounds_would_decide() -> None:
    a = [10.0, 10.0, 10.0, 10.0]
    b = [10.6, 9.7, 10.4, 9.9]  # +1.5 % on average, spread ±4 %
    v = paired_verdict(a, b, margin_pct=3)
    assert v.verdict == "inconclusive"
    assert v.low_pct < 0 < v.high_pct and v.high_pct > 3
    d = paired.log_ratios(a, b)
    mean, s = sum(d) / 4, float(sps.tstd(d))
    n = v.rounds_needed
    assert n is not None and n > 4 and v.text == f"inconclusive (about {n} rounds would decide)"
    # at that many rounds (same mean and spread) the interval fits within ±3 % or
    # excludes 0, and one round fewer it did neither
    for rounds, decided in ((n, True), (n - 1, False)):
        h = float(sps.t.ppf(0.975, rounds - 1)) * s / math.sqrt(rounds)
        same = abs(mean) + h <= math.log1p(0.03)
        change = abs(mean) > h
        assert (same or change) is decided


def test_too_few_rounds_and_skipped_zeros() -> None:
    v = paired_verdict([10, 0, 10], [11, 5, 11])  # a round with a zero figure is no pair
    assert v.verdict == "too few rounds" and v.n == 2 and v.p_value is None
    assert v.change_pct == pytest.approx(10.0)


def test_no_spread() -> None:
    assert paired_verdict([1, 2, 3], [1, 2, 3]).verdict == "same"
    v = paired_verdict([1, 2, 3], [1.1, 2.2, 3.3])
    assert v.verdict == "faster" and v.p_value is not None and v.p_value < 1e-12


def test_rounds_for_hand_values() -> None:
    # s 0.03, target 0.02: t(0.975, 10)·0.03/√11 = 0.02015 > 0.02 >= t(0.975, 11)·0.03/√12
    assert rounds_for(0.03, 0.02) == 12
    assert rounds_for(0.0, 0.02) == 2 and rounds_for(0.0, 0.02, least=3) == 3
    assert rounds_for(0.01, 0.02, least=5) == 5  # never fewer than asked
    assert rounds_for(0.1, 0.0) == paired.MAX_ROUNDS
    for s, target in ((0.05, 0.03), (0.02, 0.005), (0.2, 0.03)):
        n = rounds_for(s, target)
        assert paired.half_width(s, n) <= target < paired.half_width(s, n - 1)


def test_rounds_to_decide() -> None:
    assert rounds_to_decide(0.0, 0.05, 0.0) is None  # no change and no margin: never
    assert rounds_to_decide(0.0, 0.0, 0.03) == 2
    # a mean of 2 %, spread 3 %: excluding 0 takes rounds_for(0.03, 0.02) = 12;
    # fitting within ±3 % takes rounds_for(0.03, ln 1.03 - 0.02)
    assert rounds_to_decide(0.02, 0.03, math.log1p(0.03)) == min(
        12, rounds_for(0.03, math.log1p(0.03) - 0.02)
    )


def test_a_paired_verdict_finds_5_percent_under_drift_and_keeps_its_level() -> None:
    """Seeded simulation: each round's machine speed drifts by ±20 % (hitting A and B
    alike), each run adds 1 % of its own noise. With no change, at most ~5 % of trials
    (binomial margin) call one; a true 5 % change is called slower in nearly all trials
    at 6 rounds, and its interval covers the truth ~95 % of the time."""
    rng = random.Random(19)
    trials = 400
    false, found, covered = 0, 0, 0
    for _ in range(trials):
        drift = [rng.uniform(0.8, 1.2) for _ in range(6)]
        a = [10 * k * rng.gauss(1, 0.01) for k in drift]
        same = [10 * k * rng.gauss(1, 0.01) for k in drift]
        slow = [10 / 1.05 * k * rng.gauss(1, 0.01) for k in drift]  # cost +5 %
        false += paired_verdict(a, same).verdict in ("faster", "slower")
        v = paired_verdict(a, slow)
        found += v.verdict == "slower"
        assert v.low_pct is not None and v.high_pct is not None
        covered += v.low_pct <= 100 * (1 / 1.05 - 1) <= v.high_pct
    assert false <= 0.05 * trials + 3 * math.sqrt(0.05 * 0.95 * trials)
    assert found >= 0.99 * trials
    assert abs(covered / trials - 0.95) < 3 * math.sqrt(0.05 * 0.95 / trials)
