"""The CPU-speed probe: its spread arithmetic, and that it runs where it says and leaves
the harness's affinity as it was."""

from __future__ import annotations

import os

import pytest

from tunbench.system import steadiness


def test_cv_is_the_sample_spread_in_percent_of_the_mean() -> None:
    # mean 10, sample sd sqrt(((-2)^2 + 0 + 2^2) / 2) = 2: 20 %
    assert steadiness.cv_percent([8.0, 10.0, 12.0]) == pytest.approx(20.0)
    assert steadiness.cv_percent([5.0]) == 0.0


def test_measure_bins_each_cpu_and_puts_the_affinity_back() -> None:
    before = os.sched_getaffinity(0)
    cpu = min(before)
    (speed,) = steadiness.measure([cpu], seconds=0.2, bin_s=0.05)
    assert speed.cpu == cpu and speed.bins >= 4
    assert 0.0 <= speed.cv_percent < 100.0
    assert os.sched_getaffinity(0) == before


def test_the_line_names_each_cpu() -> None:
    text = steadiness.line([steadiness.Speed(0, 10, 2.04), steadiness.Speed(1, 10, 13.0)])
    assert "±2.0% on CPU 0, ±13.0% on CPU 1" in text and "50 ms bins" in text
