"""The change-point detector and the history's labels, on synthetic series with fixed
seeds (the data's and the permutation generator's), so every answer is reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tunbench.analysis import changepoints as cp
from tunbench.analysis import history as hist
from tunbench.analysis.history import Run, Series

PER_REV = 3


def _brute(x: np.ndarray, m: int) -> float:
    """Q of one split, straight from its definition."""
    a, b = x[:m], x[m:]
    k, n = len(b), len(x)
    cross = sum(abs(u - v) for u in a for v in b)
    wa = sum(abs(u - v) for u, v in itertools.combinations(a, 2))
    wb = sum(abs(u - v) for u, v in itertools.combinations(b, 2))
    return float(
        m * k / n * (2 * cross / (m * k) - wa / (m * (m - 1) / 2) - wb / (k * (k - 1) / 2))
    )


def test_divergence_matches_its_definition() -> None:
    x = np.random.default_rng(7).normal(size=11)
    cuts = np.array([2, 4, 6, 9])
    assert cp.divergence(x, cuts) == pytest.approx([_brute(x, int(m)) for m in cuts])


def test_cuts_only_at_revision_boundaries_with_three_runs_a_side() -> None:
    groups = [0, 0, 1, 1, 1, 2, 3, 3, 3, 3]
    assert cp.allowed_cuts(groups, 0, len(groups), 3).tolist() == [5, 6]
    assert cp.allowed_cuts(groups, 0, 5, 3).tolist() == []


def _series(
    values: np.ndarray,
    kernel: np.ndarray | None = None,
    per_rev: int = PER_REV,
) -> Series:
    revs = [f"r{i}" for i in range(len(values) // per_rev)]
    runs = [
        Run(
            revs[i // per_rev],
            float(v),
            None if kernel is None else float(v / kernel[i]),
            None if kernel is None else float(kernel[i]),
        )
        for i, v in enumerate(values)
    ]
    return Series("tb", "fwd", "stream", "{}", "gbps", True, revs, runs)


def _step(seed: int, revisions: int = 20, at: int = 10, size: float = -0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.where(np.arange(revisions * PER_REV) >= at * PER_REV, 1 + size, 1.0)
    return 10.0 * level * (1 + rng.uniform(-0.02, 0.02, revisions * PER_REV))


def test_five_percent_step_found_at_its_revision() -> None:
    for seed in range(5):
        series = _series(_step(seed))
        [change] = hist.judge(series)
        assert change.rev == "r10", seed
        assert change.p_value <= cp.ALPHA
        assert change.absolute.change_pct == pytest.approx(-5.0, abs=1.5)
        assert -7 < change.absolute.ci_low_pct < change.absolute.ci_high_pct < -3
        assert change.worse
        assert change.label == hist.UNLABELLED  # no kernel row paired


def test_pure_noise_has_no_change_in_twenty_seeds() -> None:
    found = [hist.judge(_series(_step(seed, size=0.0))) for seed in range(100, 120)]
    assert found == [[]] * 20


def test_a_step_smaller_than_the_noise_floor_needs_more_runs() -> None:
    """A 0.5 % step in ±2 % noise with 3 runs per revision is not found: the detector
    does not report what the data cannot show."""
    assert hist.judge(_series(_step(3, size=-0.005))) == []


def _kernel(seed: int, n: int, step_at: int | None, size: float) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    level = np.ones(n) if step_at is None else np.where(np.arange(n) >= step_at, 1 + size, 1.0)
    return 40.0 * level * (1 + rng.uniform(-0.01, 0.01, n))


def test_host_step_mirrored_by_the_kernel_row_is_labelled_host() -> None:
    n = 20 * PER_REV
    kernel = _kernel(1, n, 10 * PER_REV, -0.10)
    rng = np.random.default_rng(11)
    # the forwarder keeps its share of the kernel's figure, the machine got slower
    values = kernel * 0.25 * (1 + rng.uniform(-0.01, 0.01, n))
    [change] = hist.judge(_series(values, kernel))
    assert (change.rev, change.found_in, change.label) == ("r10", "absolute", hist.HOST)
    assert change.kernel is not None and change.kernel.change_pct == pytest.approx(-10, abs=2)


def test_kernel_row_moving_alone_is_the_host_though_the_ratio_moved() -> None:
    """A CPU-bound forwarder keeps its figure while the kernel's ceiling rises: the ratio
    falls, but only its denominator changed."""
    n = 20 * PER_REV
    kernel = _kernel(4, n, 10 * PER_REV, +0.15)
    values = 10.0 * (1 + np.random.default_rng(12).uniform(-0.01, 0.01, n))
    [change] = hist.judge(_series(values, kernel))
    assert (change.rev, change.label) == ("r10", hist.HOST)
    assert change.found_in == "ratio"


def test_forwarder_step_under_a_steady_kernel_is_labelled_forwarder() -> None:
    n = 20 * PER_REV
    kernel = _kernel(2, n, None, 0.0)
    values = _step(4) / 10.0 * kernel * 0.25
    [change] = hist.judge(_series(values, kernel))
    assert (change.rev, change.label) == ("r10", hist.FORWARDER)
    assert change.found_in in ("ratio", "both")
    assert change.ratio is not None and change.ratio.change_pct < -3


def test_forwarder_and_host_moving_at_once_is_both() -> None:
    n = 20 * PER_REV
    kernel = _kernel(3, n, 10 * PER_REV, +0.10)
    values = _step(5, size=-0.08) / 10.0 * kernel * 0.25
    [change] = hist.judge(_series(values, kernel))
    assert (change.rev, change.label) == ("r10", hist.BOTH)


def test_the_answer_depends_only_on_the_seed() -> None:
    x = _step(8, size=-0.02)
    groups = hist.synthetic_groups(20, PER_REV)
    a = cp.detect(x, groups, seed=1, permutations=199)
    assert a == cp.detect(x, groups, seed=1, permutations=199)


def test_runs_out_of_revision_order_are_refused() -> None:
    with pytest.raises(ValueError, match="revision order"):
        cp.detect([1.0] * 6, [0, 0, 1, 1, 0, 0])


def test_two_steps_are_both_found() -> None:
    rng = np.random.default_rng(21)
    level = np.repeat([1.0, 0.9, 1.0], 8 * PER_REV)
    x = 10 * level * (1 + rng.uniform(-0.02, 0.02, len(level)))
    assert [c.rev for c in hist.judge(_series(x))] == ["r8", "r16"]
