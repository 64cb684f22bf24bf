"""RTT percentiles of the latency probe: nearest rank, as a reader of p50/p99 expects."""

from __future__ import annotations

import random

import pytest

from tunbench.load.ping import PingResult


def nearest_rank(values: list[float], q: float) -> float:
    """The definition, with integer arithmetic: the smallest value with >= q % at or below."""
    ordered = sorted(values)
    n = len(ordered)
    for rank in range(1, n + 1):
        if rank * 100 >= q * n:
            return ordered[rank - 1]
    return ordered[-1]


@pytest.mark.parametrize("n", [1, 2, 10, 99, 100, 110, 1000])
@pytest.mark.parametrize("q", [0, 1, 50, 90, 99, 100])
def test_percentile_is_nearest_rank(n: int, q: int) -> None:
    rng = random.Random(n)
    rtts = [rng.uniform(0.01, 5.0) for _ in range(n)]
    assert len(set(rtts)) == n
    assert PingResult(n, n, rtts).percentile(q) == nearest_rank(rtts, q)


def test_known_ranks() -> None:
    ten = PingResult(10, 10, [float(i) for i in range(1, 11)])
    assert ten.percentile(50) == 5.0  # not the 6th value
    hundred = PingResult(100, 100, [float(i) for i in range(1, 101)])
    assert hundred.percentile(99) == 99.0  # not the maximum
    assert PingResult(3, 0, []).percentile(50) is None
