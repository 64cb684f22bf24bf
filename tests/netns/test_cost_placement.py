"""Placement and cost, checked from outside tunbench: the forwarder's threads really run on
the CPU ``--placement split`` gives them, and a paced run's cost is the CPU time the test
itself reads from /proc over the measured window, over the bytes iperf3 received in it."""

from __future__ import annotations

import bisect
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tunbench.analysis import results

from helpers import REPO, TUNBENCH

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]
TICK = os.sysconf("SC_CLK_TCK")


def start(spec: str, res: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [*TUNBENCH, "run", spec, "--json", "-q", "--background-wait", "0"]
    argv += ["--duration", "2", "--omit", "0", "--results-dir", str(res), *extra]
    return subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def forwarder_of(run: subprocess.Popen[str], module: str) -> psutil.Process:
    """The forwarder once it runs (``python -m MODULE``: the nsexec that starts it names it
    too, before it has entered the namespace and pinned itself)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for p in psutil.Process(run.pid).children(recursive=True):
            try:
                if p.cmdline()[1:3] == ["-m", module]:
                    return p
            except psutil.Error:
                continue
        time.sleep(0.02)
    raise AssertionError(f"no {module} process appeared")


def watch(fwd: psutil.Process, run: subprocess.Popen[str], read: Callable[[int], object]) -> list:
    """``read(pid)`` with ``time.monotonic()`` every 20 ms while the forwarder lives."""
    seen = []
    while run.poll() is None:
        try:
            seen.append((time.monotonic(), read(fwd.pid)))
        except (OSError, ValueError):
            break
        time.sleep(0.02)
    return seen


def finish(run: subprocess.Popen[str]) -> dict:
    out, err = run.communicate(timeout=40)
    assert run.returncode == 0, err
    return json.loads(out)


def processors(pid: int) -> set[int]:
    """The CPU each thread last ran on: field 39 of /proc/PID/task/TID/stat."""
    cpus = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        cpus.add(int(stat.rsplit(")", 1)[1].split()[39 - 3]))  # fields after comm start at 3
    return cpus


def test_split_runs_the_forwarder_on_its_own_cpu(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    run = start("sync-normal", tmp_path, "--placement", "split")
    fwd = forwarder_of(run, "forwarders.sync_normal")
    first = min(os.sched_getaffinity(0))
    assert os.sched_getaffinity(fwd.pid) == {first}
    seen = watch(fwd, run, processors)
    rec = finish(run)
    assert len(seen) > 20 and {c for _, cpus in seen for c in cpus} == {first}
    assert rec["placement"] == f"split {first}|" + ",".join(
        str(c) for c in sorted(os.sched_getaffinity(0)) if c != first
    )
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["cpus"]["forwarder"] == [first]


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), /proc/PID/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15


def at(series: list[tuple[float, float]], t: float) -> float:
    """The series at time ``t``, interpolated linearly."""
    times = [s[0] for s in series]
    i = max(1, min(len(series) - 1, bisect.bisect_left(times, t)))
    (t0, v0), (t1, v1) = series[i - 1], series[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def test_paced_cost_is_cpu_time_over_bytes(tmp_path: Path) -> None:
    run = start("sync-normal", tmp_path, "--offered", "300M")
    fwd = forwarder_of(run, "forwarders.sync_normal")
    seen = watch(fwd, run, cpu_seconds)
    rec = finish(run)
    doc = results.load(Path(rec["result_file"]))
    start_t, end_t = doc["window"]["start"], doc["window"]["end"]
    assert seen[0][0] < start_t and end_t < seen[-1][0], "the test watched the whole window"
    cpu_us = 1e6 * (at(seen, end_t) - at(seen, start_t))
    server = doc["iperf3"]["server_output_json"]["intervals"]
    megabytes = sum(iv["sum"]["bytes"] for iv in server if not iv["sum"].get("omitted")) / 1e6
    assert rec["offered_short"] is False and rec["cost_cpu_source"] == "schedstat"
    assert rec["us_per_mb"] == pytest.approx(cpu_us / megabytes, rel=0.10)
    gbit, core_seconds = megabytes * 8e-3, cpu_us / 1e6
    assert rec["gbps_per_core"] == pytest.approx(gbit / core_seconds, rel=0.10)


def rps_of(ns: str, dev: str) -> str | None:
    """``dev``'s first receive queue's RPS mask in ``ns``, read by ``ip netns exec`` (which
    mounts that namespace's sysfs): None while the device is not there yet."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/queues/rx-0/rps_cpus"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def test_steer_receive_puts_the_tun_devices_receive_work_on_the_load_cpu(tmp_path: Path) -> None:
    """``--steer-receive`` with ``--placement split``: the TUN device in each end namespace
    has its receive work steered (RPS) to the load CPU, and the result says so."""
    from pyroute2 import netns

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    run = start("sync-normal", tmp_path, "--placement", "split", "--steer-receive")
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while run.poll() is None and len(seen) < 2 and time.monotonic() < deadline:
        for ns in netns.listnetns():
            if ns.startswith("tb-") and ns[-2:] in ("-a", "-b") and ns not in seen:
                mask = rps_of(ns, "tun11" if ns.endswith("-a") else "tun22")
                if mask is not None and int(mask.replace(",", ""), 16):
                    seen[ns] = mask
        time.sleep(0.05)
    rec = finish(run)
    load = sorted(os.sched_getaffinity(0))[1:]
    want = sum(1 << c for c in load)
    assert len(seen) == 2 and all(int(m.replace(",", ""), 16) == want for m in seen.values()), seen
    doc = results.load(Path(rec["result_file"]))
    assert doc["metadata"]["steer_receive"] is True
    assert doc["metadata"]["placement"]["receive"] == load
