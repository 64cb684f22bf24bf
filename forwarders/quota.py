"""``--cpu-quota PCT``: a positive control whose size is known exactly.

The forwarder puts itself in a CPU cgroup of its own, ``tb-quota-<pid>``, whose CFS
bandwidth is PCT % of one CPU (per :func:`period_us` period). A forwarder that its own
CPU bounds then moves exactly PCT/100 of what it moved at 100 %: ``--cpu-quota 95.24``
is the same code with every packet costing 5 % more of a core's time, a change a
verdict must find and size, without the spin knob's uncertainty about what a busy-wait
costs beyond its own nanoseconds (README, "Pairing"). Its cost per byte (Gbit/s per
core) does not change, so it controls a capacity verdict, not a cost one.

cgroup v1 (``/sys/fs/cgroup/cpu``: ``cpu.cfs_quota_us``) and v2 (``cpu.max``) both work.
The forwarder cannot remove its own cgroup while it is in it, and it exits with
``os._exit``: the harness removes the cgroup once the forwarder is gone
(:func:`remove_of`), and ``tunbench clean`` removes any an interrupted run left.
"""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "tb-quota-"
PERIOD_US = 2_000  # 2 ms: short, so a throttled spell adds ~1 ms to TCP's round trip
MIN_QUOTA_US = 1_000  # the kernel's smallest quota
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def period_us(percent: float) -> int:
    """The CFS period for ``percent``: :data:`PERIOD_US`, longer where the quota would be
    under the kernel's 1 ms. The period is short because a throttled forwarder holds
    TCP's packets for the rest of it: at 10 ms and 50 % the stall (5 ms) made a 244 KB
    window (``--window auto``) the limit instead of the CPU, and the capped row's cost
    per byte moved by a third from run to run."""
    return max(PERIOD_US, round(MIN_QUOTA_US * 100 / percent))


class QuotaError(RuntimeError):
    """The quota cannot be set on this machine (no CPU controller, not root)."""


def _root() -> tuple[Path, int]:
    """The CPU controller's root and the cgroup version."""
    if (V1 / "cpu.cfs_period_us").exists() or (V1 / "tasks").exists():
        return V1, 1
    if "cpu" in (V2 / "cgroup.controllers").read_text(errors="replace").split():
        return V2, 2
    raise QuotaError("no cgroup CPU controller (cgroup v1 cpu or v2 cpu.max) to set a quota in")


def path_of(pid: int) -> Path | None:
    """Where the cgroup of forwarder ``pid`` is (or would be); None without a controller."""
    try:
        root, _ = _root()
    except (QuotaError, OSError):
        return None
    return root / f"{PREFIX}{pid}"


def join(percent: float) -> dict[str, object]:
    """Put this process (all its threads) in a new cgroup limited to ``percent`` % of one
    CPU; what it did, for the forwarder's stats."""
    if not 1 <= percent <= 100:
        raise QuotaError(f"--cpu-quota must be 1..100 (% of one CPU), got {percent:g}")
    try:
        root, version = _root()
        group = root / f"{PREFIX}{os.getpid()}"
        group.mkdir(exist_ok=True)
        period = period_us(percent)
        quota = round(period * percent / 100)
        if version == 1:
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {period}")
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError as exc:
        raise QuotaError(f"cannot set a CPU quota: {exc}") from exc
    return {"percent": percent, "quota_us": quota, "period_us": period, "cgroup": str(group)}


def remove_of(pid: int) -> bool:
    """Remove the cgroup of forwarder ``pid`` once it has exited (an rmdir of an empty
    cgroup); True if there was one."""
    group = path_of(pid)
    if group is None or not group.is_dir():
        return False
    group.rmdir()
    return True


def leftovers() -> list[Path]:
    """Quota cgroups no process is in any more (an interrupted run's)."""
    try:
        root, _ = _root()
    except (QuotaError, OSError):
        return []
    out = []
    for group in sorted(root.glob(f"{PREFIX}*")):
        try:
            empty = not (group / "cgroup.procs").read_text().split()
        except OSError:
            continue
        if empty:
            out.append(group)
    return out
