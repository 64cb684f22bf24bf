"""--cpu-quota: the option's range, what the forwarder writes into its cgroup, which
cgroups ``clean`` takes for leftovers (a stand-in cgroup tree: no root needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forwarders import quota
from tunbench.cell.variants import parse_spec
from tunbench.errors import UsageError


@pytest.fixture
def v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cpu.cfs_period_us").write_text("100000")
    monkeypatch.setattr(quota, "V1", tmp_path)
    return tmp_path


def test_the_spec_option_takes_a_share_of_one_cpu() -> None:
    assert parse_spec("sync-normal --cpu-quota 95.24").options.cpu_quota == 95.24
    assert parse_spec("async-gso --cpu-quota 50").options.cpu_quota == 50.0
    for bad in ("0", "100.5", "half"):
        with pytest.raises(UsageError, match="cpu-quota"):
            parse_spec(f"sync-normal --cpu-quota {bad}")


def test_join_writes_period_quota_and_this_process(v1: Path) -> None:
    got = quota.join(95.24)
    group = v1 / f"tb-quota-{os.getpid()}"
    assert got == {"percent": 95.24, "quota_us": 1905, "period_us": 2_000, "cgroup": str(group)}
    assert (group / "cpu.cfs_period_us").read_text() == "2000"
    assert (group / "cpu.cfs_quota_us").read_text() == "1905"
    assert (group / "cgroup.procs").read_text() == str(os.getpid())
    assert quota.path_of(os.getpid()) == group
    with pytest.raises(quota.QuotaError, match=r"1\.\.100"):
        quota.join(0.5)


def test_the_period_is_short_but_the_quota_never_under_1_ms() -> None:
    periods = [quota.period_us(p) for p in (100, 95.24, 50, 25, 1)]
    assert periods == [2000, 2000, 2000, 4000, 100_000]
    for p in (100, 95.24, 50, 33.3, 25, 10, 1):
        assert round(quota.period_us(p) * p / 100) >= quota.MIN_QUOTA_US, p


def test_only_empty_quota_cgroups_are_leftovers(v1: Path) -> None:
    for name, procs in (("tb-quota-1", ""), ("tb-quota-2", "4242\n"), ("other-3", "")):
        (v1 / name).mkdir()
        (v1 / name / "cgroup.procs").write_text(procs)
    assert quota.leftovers() == [v1 / "tb-quota-1"]


def test_no_cpu_controller_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quota, "V1", tmp_path / "none")
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    monkeypatch.setattr(quota, "V2", tmp_path)
    with pytest.raises(quota.QuotaError, match="no cgroup CPU controller"):
        quota.join(50)
    assert quota.path_of(1) is None and quota.leftovers() == []
